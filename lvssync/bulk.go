package lvssync

import "encoding/binary"

// spareBulkRequest marks a bulk request: a version 1 header whose spare
// field is "BQ". ip_vs_process_message treats a nonzero spare as a version
// 0 message whose nr_conns is the reserved byte, 0: a kernel peer ignores it.
const spareBulkRequest = 0x4251

// BulkRequest builds into buf (which must have room for HeaderLen+AuthLen
// bytes) the message a returning or new backup sends to ask a master for a
// copy of its table, and returns it. With auth the auth block is left for
// a Signer. The master answers with ordinary version 1 messages sent to the
// requester's address, paced by its bulk rate cap.
func BulkRequest(buf []byte, syncID uint8, auth bool) []byte {
	n := HeaderLen
	if auth {
		n += AuthLen
	}
	m := buf[:n]
	clear(m)
	m[1] = syncID
	binary.BigEndian.PutUint16(m[2:4], uint16(n))
	m[5] = Version1
	binary.BigEndian.PutUint16(m[6:8], spareBulkRequest)
	if auth {
		m[HeaderLen] = authMarker
	}
	return m
}

// IsBulkRequest reports whether h is the header of a bulk request.
func (h Header) IsBulkRequest() bool { return h.Version == Version1 && h.Spare == spareBulkRequest }
