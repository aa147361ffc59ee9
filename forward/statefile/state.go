package statefile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/uvs-project/uvs/conntrack"
)

// State files keep connections and persistence templates across a restart (uvs run
// --state-file). The format is little-endian binary: a header (magic, version, interface
// names) and one fixed-size record per entry. Services and real servers are recorded by
// address and port, not by the IDs of the run that wrote the file, so a restart with a changed
// config restores what still matches and skips the rest.

const (
	stateMagic = "UVSSTATE"
	// stateVersion 2 holds 16-byte addresses (IPv6, or IPv4-mapped as conntrack keys them);
	// version 1 files (IPv4 only, 40-byte records) are still read.
	stateVersion   = 2
	stateRecord    = 64 // bytes per entry, see putState
	stateRecordV1  = 40
	stateVersionV1 = 1
	// stateMaxEntries bounds what a (possibly hostile or corrupt) file can make us read.
	stateMaxEntries = conntrack.MaxCapacity
)

// SavedConn is one connection or template in a state file.
type SavedConn struct {
	Key         conntrack.Key
	Real        [16]byte // conntrack's form: IPv6, or IPv4-mapped
	RPort       uint16
	ServicePort uint16 // the service's (first) port: with Key.VIP and Key.Proto it names the service
	State       conntrack.State
	Flags       conntrack.Flags
	RemainingMs uint32
	HopIf       uint8 // index into the file's interface names
	HopMAC      [6]byte
}

// putState writes a version 2 record: client, VIP and real (16 bytes each), then the fields
// of a version 1 record from its offset 8 on, less the real.
func putState(b []byte, c *SavedConn) {
	copy(b[0:16], c.Key.Client[:])
	copy(b[16:32], c.Key.VIP[:])
	copy(b[32:48], c.Real[:])
	binary.LittleEndian.PutUint16(b[48:], c.Key.CPort)
	binary.LittleEndian.PutUint16(b[50:], c.Key.VPort)
	b[52] = c.Key.Proto
	b[53] = byte(c.State)
	b[54] = byte(c.Flags)
	b[55] = c.HopIf
	binary.LittleEndian.PutUint16(b[56:], c.RPort)
	binary.LittleEndian.PutUint16(b[58:], c.ServicePort)
	binary.LittleEndian.PutUint32(b[60:], c.RemainingMs)
	_ = b[stateRecord-1]
}

// getState reads a version 2 record; the NAT hop's MAC follows it (putHop).
func getState(b []byte, c *SavedConn) {
	copy(c.Key.Client[:], b[0:16])
	copy(c.Key.VIP[:], b[16:32])
	copy(c.Real[:], b[32:48])
	c.Key.CPort = binary.LittleEndian.Uint16(b[48:])
	c.Key.VPort = binary.LittleEndian.Uint16(b[50:])
	c.Key.Proto = b[52]
	c.State = conntrack.State(b[53])
	c.Flags = conntrack.Flags(b[54])
	c.HopIf = b[55]
	c.RPort = binary.LittleEndian.Uint16(b[56:])
	c.ServicePort = binary.LittleEndian.Uint16(b[58:])
	c.RemainingMs = binary.LittleEndian.Uint32(b[60:])
}

// getStateV1 reads a version 1 record (IPv4 addresses).
func getStateV1(b []byte, c *SavedConn) {
	c.Key.Client = conntrack.Map4([4]byte(b[0:4]))
	c.Key.VIP = conntrack.Map4([4]byte(b[4:8]))
	c.Key.CPort = binary.LittleEndian.Uint16(b[8:])
	c.Key.VPort = binary.LittleEndian.Uint16(b[10:])
	c.Key.Proto = b[12]
	c.State = conntrack.State(b[13])
	c.Flags = conntrack.Flags(b[14])
	c.HopIf = b[15]
	c.Real = conntrack.Map4([4]byte(b[16:20]))
	c.RPort = binary.LittleEndian.Uint16(b[20:])
	c.ServicePort = binary.LittleEndian.Uint16(b[22:])
	c.RemainingMs = binary.LittleEndian.Uint32(b[24:])
	copy(c.HopMAC[:], b[28:34])
}

// WriteState writes a state file: the interface names, then the entries.
func WriteState(w io.Writer, ifaces []string, conns []SavedConn) error {
	bw := bufio.NewWriter(w)
	var h [16]byte
	copy(h[:8], stateMagic)
	binary.LittleEndian.PutUint16(h[8:], stateVersion)
	h[10] = byte(len(ifaces))
	binary.LittleEndian.PutUint32(h[12:], uint32(len(conns)))
	if len(ifaces) > 255 {
		return errors.New("forward: state: more than 255 interfaces")
	}
	if _, err := bw.Write(h[:]); err != nil {
		return fmt.Errorf("forward: write state: %w", err)
	}
	for _, name := range ifaces {
		var n [16]byte // IFNAMSIZ
		copy(n[:], name)
		if _, err := bw.Write(n[:]); err != nil {
			return fmt.Errorf("forward: write state: %w", err)
		}
	}
	var rec [stateRecord + 8]byte
	for i := range conns {
		putState(rec[:], &conns[i])
		copy(rec[stateRecord:], conns[i].HopMAC[:]) // and 2 bytes of padding
		if _, err := bw.Write(rec[:]); err != nil {
			return fmt.Errorf("forward: write state: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("forward: write state: %w", err)
	}
	return nil
}

// ErrStateFormat says a state file is not one uvs wrote (or is truncated).
var ErrStateFormat = errors.New("not a uvs state file")

// ReadState reads a state file written by WriteState. Lengths are checked before use.
func ReadState(r io.Reader) (ifaces []string, conns []SavedConn, err error) {
	br := bufio.NewReader(r)
	var h [16]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return nil, nil, fmt.Errorf("forward: read state: %w (%w)", ErrStateFormat, err)
	}
	if string(h[:8]) != stateMagic {
		return nil, nil, fmt.Errorf("forward: read state: %w", ErrStateFormat)
	}
	v := binary.LittleEndian.Uint16(h[8:])
	if v != stateVersion && v != stateVersionV1 {
		return nil, nil, fmt.Errorf("forward: read state: version %d, want %d: %w", v, stateVersion, ErrStateFormat)
	}
	recLen := stateRecord + 8 // the record and the hop MAC, padded
	if v == stateVersionV1 {
		recLen = stateRecordV1
	}
	n := binary.LittleEndian.Uint32(h[12:])
	if n > stateMaxEntries {
		return nil, nil, fmt.Errorf("forward: read state: %d entries: %w", n, ErrStateFormat)
	}
	for i := 0; i < int(h[10]); i++ {
		var name [16]byte
		if _, err := io.ReadFull(br, name[:]); err != nil {
			return nil, nil, fmt.Errorf("forward: read state: %w (%w)", ErrStateFormat, err)
		}
		end := 0
		for end < len(name) && name[end] != 0 {
			end++
		}
		ifaces = append(ifaces, string(name[:end]))
	}
	conns = make([]SavedConn, 0, min(n, 1<<20))
	rec := make([]byte, recLen)
	for i := uint32(0); i < n; i++ {
		if _, err := io.ReadFull(br, rec); err != nil {
			return nil, nil, fmt.Errorf("forward: read state: entry %d: %w (%w)", i, ErrStateFormat, err)
		}
		var c SavedConn
		if v == stateVersionV1 {
			getStateV1(rec, &c)
		} else {
			getState(rec, &c)
			copy(c.HopMAC[:], rec[stateRecord:stateRecord+6])
		}
		conns = append(conns, c)
	}
	return ifaces, conns, nil
}
