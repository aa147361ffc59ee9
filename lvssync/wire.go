package lvssync

import (
	"encoding/binary"
	"net/netip"
)

// Defaults of the IPVS sync daemon (ip_vs_sync.c, start_sync_thread).
const (
	DefaultPort = 8848 // DefaultPort is IP_VS_SYNC_PORT.
	DefaultTTL  = 1    // DefaultTTL is the default mcast_ttl.
	// DefaultThreshold and DefaultPeriod are the sync_threshold sysctl's defaults: a
	// connection is synced when its packet count modulo period equals threshold.
	DefaultThreshold = 3
	DefaultPeriod    = 50
)

// DefaultGroup is IP_VS_SYNC_GROUP, 224.0.0.81.
var DefaultGroup = netip.AddrFrom4([4]byte{224, 0, 0, 81})

// Protocol versions in the message header (SYNC_PROTO_VER).
const (
	Version0 = 0
	Version1 = 1
)

// Sizes of the wire structures, from their definitions in ip_vs_sync.c.
const (
	HeaderLen   = 8  // HeaderLen is sizeof(struct ip_vs_sync_mesg), the version 1 header.
	HeaderV0Len = 4  // HeaderV0Len is sizeof(struct ip_vs_sync_mesg_v0).
	RecordV4Len = 36 // RecordV4Len is sizeof(struct ip_vs_sync_v4).
	RecordV6Len = 72 // RecordV6Len is sizeof(struct ip_vs_sync_v6).
	ConnV0Len   = 24 // ConnV0Len is sizeof(struct ip_vs_sync_conn_v0) (SIMPLE_CONN_SIZE).
	SeqOptLen   = 24 // SeqOptLen is sizeof(struct ip_vs_sync_conn_options): two struct ip_vs_seq.
	// MaxRecordLen bounds a record: the 12-bit size field of ver_size (SVER_MASK).
	MaxRecordLen = 0x0fff
	// MaxConns is the most records a message can count: nr_conns is one byte.
	MaxConns = 255
)

// Record type bits (the Type byte of a version 1 record).
const (
	typeInet6 = 1 << 0 // STYPE_F_INET6
	sverShift = 12     // SVER_SHIFT: version in the top 4 bits of ver_size
	sverMask  = 0x0fff // SVER_MASK
)

// Optional parameter types of a version 1 record (IPVS_OPT_*). A type with
// OptParam set is optional: a receiver that does not know it skips it.
const (
	OptSeqData = 1    // OptSeqData is IPVS_OPT_SEQ_DATA: struct ip_vs_sync_conn_options.
	OptPEData  = 2    // OptPEData is IPVS_OPT_PE_DATA: persistence-engine data.
	OptPEName  = 3    // OptPEName is IPVS_OPT_PE_NAME: persistence-engine name.
	OptParam   = 0x40 // OptParam is IPVS_OPT_F_PARAM (1 << (IPVS_OPT_PARAM-1)).
)

// Limits on persistence-engine options (include/uapi/linux/ip_vs.h).
const (
	PENameMaxLen = 16  // PENameMaxLen is IP_VS_PENAME_MAXLEN.
	PEDataMaxLen = 255 // PEDataMaxLen is IP_VS_PEDATA_MAXLEN.
)

// Connection flags, IP_VS_CONN_F_* in include/uapi/linux/ip_vs.h.
const (
	FlagFwdMask   = 0x0007 // FlagFwdMask is IP_VS_CONN_F_FWD_MASK: the forwarding method.
	FlagMasq      = 0x0000 // FlagMasq is IP_VS_CONN_F_MASQ: NAT.
	FlagLocalNode = 0x0001 // FlagLocalNode is IP_VS_CONN_F_LOCALNODE.
	FlagTunnel    = 0x0002 // FlagTunnel is IP_VS_CONN_F_TUNNEL: IPIP.
	FlagDRoute    = 0x0003 // FlagDRoute is IP_VS_CONN_F_DROUTE: direct routing.
	FlagBypass    = 0x0004 // FlagBypass is IP_VS_CONN_F_BYPASS.
	FlagSync      = 0x0020 // FlagSync is IP_VS_CONN_F_SYNC: the entry was created by sync.
	FlagHashed    = 0x0040 // FlagHashed is IP_VS_CONN_F_HASHED; never sent.
	FlagNoOutput  = 0x0080 // FlagNoOutput is IP_VS_CONN_F_NOOUTPUT.
	FlagInactive  = 0x0100 // FlagInactive is IP_VS_CONN_F_INACTIVE: not established.
	FlagOutSeq    = 0x0200 // FlagOutSeq is IP_VS_CONN_F_OUT_SEQ.
	FlagInSeq     = 0x0400 // FlagInSeq is IP_VS_CONN_F_IN_SEQ.
	FlagSeqMask   = 0x0600 // FlagSeqMask is IP_VS_CONN_F_SEQ_MASK.
	FlagNoCPort   = 0x0800 // FlagNoCPort is IP_VS_CONN_F_NO_CPORT.
	FlagTemplate  = 0x1000 // FlagTemplate is IP_VS_CONN_F_TEMPLATE: a persistence template.
	FlagOnePacket = 0x2000 // FlagOnePacket is IP_VS_CONN_F_ONE_PACKET; never synced.
	// FlagBackupMask is IP_VS_CONN_F_BACKUP_MASK: the flags a backup keeps from a record.
	FlagBackupMask = FlagFwdMask | FlagNoOutput | FlagInactive | FlagSeqMask | FlagNoCPort | FlagTemplate
)

// IP protocol numbers.
const (
	ProtoTCP = 6
	ProtoUDP = 17
)

// TCP states, IP_VS_TCP_S_* (include/net/ip_vs.h). These numbers are on the wire.
const (
	TCPNone        = 0
	TCPEstablished = 1
	TCPSynSent     = 2
	TCPSynRecv     = 3
	TCPFinWait     = 4
	TCPTimeWait    = 5
	TCPClose       = 6
	TCPCloseWait   = 7
	TCPLastAck     = 8
	TCPListen      = 9
	TCPSynack      = 10
	numTCPStates   = 11 // IP_VS_TCP_S_LAST
)

// UDPNormal is IP_VS_UDP_S_NORMAL, the single UDP state (numUDPStates = IP_VS_UDP_S_LAST).
const (
	UDPNormal    = 0
	numUDPStates = 1
)

// Template states, IP_VS_CTPL_S_*.
const (
	TemplateNone     = 0
	TemplateAssured  = 1
	numTemplateState = 2
)

// Seq is struct ip_vs_seq: TCP sequence adjustment (only IPVS's FTP helper uses it).
type Seq struct {
	Init      uint32
	Delta     uint32
	PrevDelta uint32
}

// Conn is one connection record, decoded into host order. It holds no
// pointers into a message except PEData and PEName, which alias the buffer
// Decode was given and are valid only as long as it is.
type Conn struct {
	Protocol uint8
	Flags    uint32 // IP_VS_CONN_F_*; version 0 carries only the low 16 bits.
	State    uint16 // IP_VS_TCP_S_* for TCP, UDPNormal otherwise, IP_VS_CTPL_S_* for templates.
	Client   netip.Addr
	CPort    uint16
	VIP      netip.Addr
	VPort    uint16
	Real     netip.Addr // daddr: the real server.
	DPort    uint16
	FWMark   uint32 // Version 1 only.
	Timeout  uint32 // Seconds: the state's timeout, not the time left. 0 in version 0.

	HasSeq bool // The record carried sequence options.
	InSeq  Seq
	OutSeq Seq
	PEData []byte // IPVS_OPT_PE_DATA, aliasing the message.
	PEName []byte // IPVS_OPT_PE_NAME, aliasing the message.
}

// Template reports whether c is a persistence template.
func (c *Conn) Template() bool { return c.Flags&FlagTemplate != 0 }

// recordLen is the encoded length of c without padding.
func (c *Conn) recordLen() int {
	n := RecordV4Len
	if c.Client.Is6() {
		n = RecordV6Len
	}
	if c.HasSeq {
		n += 2 + SeqOptLen
	}
	if len(c.PEData) > 0 {
		n += 2 + len(c.PEData)
		if len(c.PEName) > 0 {
			n += 2 + len(c.PEName)
		}
	}
	return n
}

// Header is a decoded message header.
type Header struct {
	Version uint8 // Version0 or Version1.
	SyncID  uint8
	Size    uint16 // The header's size field: the whole message, in bytes.
	Count   uint8  // nr_conns: the number of connection records.
	// Spare is the version 1 spare field; a nonzero value is how uvs marks its own
	// messages that are not IPVS sync (BulkRequest), which the kernel reads as an
	// empty version 0 message.
	Spare uint16
	// Auth is the offset of the auth block, or 0 when the message has none.
	Auth int
}

// ParseHeader parses the header of msg the way ip_vs_process_message does:
// a version 1 header has reserved 0, version 1 and spare 0; anything else
// is version 0. The size field must equal len(msg). Spare values uvs uses
// for its own messages are returned as version 1 with Spare set.
func ParseHeader(msg []byte) (Header, Reason) {
	if len(msg) < HeaderV0Len {
		return Header{}, ReasonShort
	}
	h := Header{SyncID: msg[1], Size: binary.BigEndian.Uint16(msg[2:4])}
	if int(h.Size) != len(msg) {
		return h, ReasonSize
	}
	if len(msg) >= HeaderLen && msg[0] == 0 && msg[5] == Version1 {
		spare := binary.BigEndian.Uint16(msg[6:8])
		if spare == 0 || spare == spareBulkRequest {
			h.Version, h.Count, h.Spare = Version1, msg[4], spare
			if len(msg) >= HeaderLen+AuthLen && msg[HeaderLen] == authMarker {
				h.Auth = HeaderLen
			}
			return h, ReasonNone
		}
	}
	h.Version, h.Count = Version0, msg[0]
	return h, ReasonNone
}

// Decode parses the records of msg, whose header h came from ParseHeader,
// calling fn for each one. A record the kernel would skip on its own
// (unknown mandatory option, unknown protocol, invalid state) is passed to
// fn with its reason, and decoding goes on. A structural error (a record
// running past the end, a bad option length, an unknown record version or
// type) stops decoding and is returned, as the kernel drops the rest of the
// buffer. fn must not keep c or the slices in it.
//
// Decode does not allocate. It does not check the auth block; see Verifier.
func Decode(msg []byte, h Header, c *Conn, fn func(c *Conn, skip Reason)) Reason {
	if h.Version == Version0 {
		return decodeV0(msg, h, c, fn)
	}
	p := HeaderLen
	if h.Auth != 0 {
		p += AuthLen
	}
	for i := 0; i < int(h.Count); i++ {
		if p+RecordV4Len > len(msg) {
			return ReasonTruncated
		}
		vs := binary.BigEndian.Uint16(msg[p+2 : p+4])
		size := int(vs & sverMask)
		end := p + size
		if end > len(msg) {
			return ReasonTruncated
		}
		if vs>>sverShift != 0 {
			return ReasonRecordVersion
		}
		if size < RecordV4Len {
			return ReasonTruncated // the kernel's -20: the fixed part does not fit the size
		}
		skip, r := decodeRecord(msg[p:end], c)
		if r != ReasonNone {
			return r
		}
		fn(c, skip)
		p += (size + 3) &^ 3 // records are 32-bit aligned
		if p > len(msg) {
			p = len(msg)
		}
	}
	return ReasonNone
}

// decodeRecord parses one version 1 record (rec is exactly its size bytes)
// into c. It returns skip for a record to be skipped, or r for one that
// stops the message, as ip_vs_proc_sync_conn's positive and negative codes.
func decodeRecord(rec []byte, c *Conn) (skip, r Reason) {
	*c = Conn{}
	var p int
	switch t := rec[0]; {
	case t&typeInet6 != 0:
		if len(rec) < RecordV6Len {
			return 0, ReasonTruncated
		}
		c.Client = netip.AddrFrom16([16]byte(rec[24:40]))
		c.VIP = netip.AddrFrom16([16]byte(rec[40:56]))
		c.Real = netip.AddrFrom16([16]byte(rec[56:72]))
		p = RecordV6Len
	case t == 0:
		if len(rec) < RecordV4Len {
			return 0, ReasonTruncated
		}
		c.Client = netip.AddrFrom4([4]byte(rec[24:28]))
		c.VIP = netip.AddrFrom4([4]byte(rec[28:32]))
		c.Real = netip.AddrFrom4([4]byte(rec[32:36]))
		p = RecordV4Len
	default:
		return 0, ReasonType
	}
	c.Protocol = rec[1]
	c.Flags = binary.BigEndian.Uint32(rec[4:8])
	c.State = binary.BigEndian.Uint16(rec[8:10])
	c.CPort = binary.BigEndian.Uint16(rec[10:12])
	c.VPort = binary.BigEndian.Uint16(rec[12:14])
	c.DPort = binary.BigEndian.Uint16(rec[14:16])
	c.FWMark = binary.BigEndian.Uint32(rec[16:20])
	c.Timeout = binary.BigEndian.Uint32(rec[20:24])

	var seen uint8
	for p < len(rec) {
		if p+2 > len(rec) {
			return 0, ReasonOption
		}
		typ, n := rec[p], int(rec[p+1])
		p += 2
		if n == 0 || p+n > len(rec) {
			return 0, ReasonOption
		}
		data := rec[p : p+n]
		p += n
		switch typ &^ OptParam {
		case OptSeqData:
			if n != SeqOptLen || seen&1 != 0 {
				return 0, ReasonOption
			}
			seen |= 1
			c.HasSeq = true
			c.InSeq = readSeq(data[0:12])
			c.OutSeq = readSeq(data[12:24])
		case OptPEData:
			if seen&2 != 0 { // n <= 255 = PEDataMaxLen always
				return 0, ReasonOption
			}
			seen |= 2
			c.PEData = data
		case OptPEName:
			if n > PENameMaxLen || seen&4 != 0 {
				return 0, ReasonOption
			}
			seen |= 4
			c.PEName = data
		default:
			if typ&OptParam == 0 && skip == ReasonNone {
				skip = ReasonMandatoryOption
			}
		}
	}
	c.Flags &^= FlagHashed
	if skip == ReasonNone {
		skip = checkState(c)
	}
	if skip == ReasonNone && len(c.PEData) > 0 && len(c.PEName) == 0 {
		skip = ReasonOption // ip_vs_conn_fill_param_sync: PE data without a name
	}
	return skip, ReasonNone
}

// checkState applies the kernel's protocol and state checks.
func checkState(c *Conn) Reason {
	if c.Flags&FlagTemplate != 0 {
		return ReasonNone // the kernel only logs a bad template state
	}
	switch c.Protocol {
	case ProtoTCP:
		if c.State >= numTCPStates {
			return ReasonState
		}
	case ProtoUDP:
		if c.State >= numUDPStates {
			return ReasonState
		}
	default:
		return ReasonProtocol
	}
	return ReasonNone
}

func readSeq(b []byte) Seq {
	return Seq{
		Init:      binary.BigEndian.Uint32(b[0:4]),
		Delta:     binary.BigEndian.Uint32(b[4:8]),
		PrevDelta: binary.BigEndian.Uint32(b[8:12]),
	}
}

func putSeq(b []byte, s Seq) {
	binary.BigEndian.PutUint32(b[0:4], s.Init)
	binary.BigEndian.PutUint32(b[4:8], s.Delta)
	binary.BigEndian.PutUint32(b[8:12], s.PrevDelta)
}

// decodeV0 parses version 0 records (ip_vs_process_message_v0): IPv4 only,
// 16-bit flags and state, sequence options when the flags say so, no
// timeout and no fwmark.
func decodeV0(msg []byte, h Header, c *Conn, fn func(c *Conn, skip Reason)) Reason {
	p := HeaderV0Len
	for i := 0; i < int(h.Count); i++ {
		if p+ConnV0Len > len(msg) {
			return ReasonTruncated
		}
		s := msg[p : p+ConnV0Len]
		*c = Conn{
			Protocol: s[1],
			CPort:    binary.BigEndian.Uint16(s[2:4]),
			VPort:    binary.BigEndian.Uint16(s[4:6]),
			DPort:    binary.BigEndian.Uint16(s[6:8]),
			Client:   netip.AddrFrom4([4]byte(s[8:12])),
			VIP:      netip.AddrFrom4([4]byte(s[12:16])),
			Real:     netip.AddrFrom4([4]byte(s[16:20])),
			Flags:    uint32(binary.BigEndian.Uint16(s[20:22])) &^ FlagHashed,
			State:    binary.BigEndian.Uint16(s[22:24]),
		}
		p += ConnV0Len
		if c.Flags&FlagSeqMask != 0 {
			if p+SeqOptLen > len(msg) {
				return ReasonTruncated
			}
			c.HasSeq = true
			c.InSeq = readSeq(msg[p : p+12])
			c.OutSeq = readSeq(msg[p+12 : p+24])
			p += SeqOptLen
		}
		fn(c, checkState(c))
	}
	return ReasonNone
}

// Builder assembles version 1 messages in a buffer it owns. It does not
// allocate after NewBuilder. Not safe for concurrent use.
type Builder struct {
	buf    []byte // len = bytes used so far; cap = the maximum message length
	syncID uint8
	count  int
	auth   bool // an auth block follows the header
}

// NewBuilder returns a Builder for messages of at most maxLen bytes (the
// sync_maxlen of the kernel: the UDP payload), with room for an auth block
// when auth is set.
func NewBuilder(maxLen int, syncID uint8, auth bool) *Builder {
	if maxLen < HeaderLen+AuthLen+RecordV6Len+2+SeqOptLen {
		maxLen = HeaderLen + AuthLen + RecordV6Len + 2 + SeqOptLen
	}
	b := &Builder{buf: make([]byte, 0, maxLen), syncID: syncID, auth: auth}
	b.Reset()
	return b
}

// Reset starts a new, empty message.
func (b *Builder) Reset() {
	b.buf = b.buf[:HeaderLen]
	b.buf[0] = 0 // reserved: "old nr_conns i.e. must be zero now"
	b.buf[1] = b.syncID
	b.buf[4] = 0
	b.buf[5] = Version1
	b.buf[6], b.buf[7] = 0, 0
	if b.auth {
		b.buf = b.buf[:HeaderLen+AuthLen]
		clear(b.buf[HeaderLen:])
		b.buf[HeaderLen] = authMarker
	}
	b.count = 0
	b.setSize()
}

func (b *Builder) setSize() { binary.BigEndian.PutUint16(b.buf[2:4], uint16(len(b.buf))) }

// Len is the number of records in the message.
func (b *Builder) Len() int { return b.count }

// Add appends c, padding the previous record to 32 bits as the kernel does.
// It returns false, leaving the message unchanged, when c does not fit or
// the message already holds MaxConns records. Records larger than a record
// can say (MaxRecordLen) or with PE data but no PE name are refused too.
func (b *Builder) Add(c *Conn) bool {
	n := c.recordLen()
	pad := (4 - len(b.buf)&3) & 3
	if b.count >= MaxConns || n > MaxRecordLen || len(b.buf)+pad+n > cap(b.buf) ||
		len(c.PEData) > PEDataMaxLen || len(c.PEName) > PENameMaxLen ||
		(len(c.PEData) > 0) != (len(c.PEName) > 0) || (c.Client.Is6() != c.VIP.Is6() || c.Client.Is6() != c.Real.Is6()) {
		return false
	}
	for range pad {
		b.buf = append(b.buf, 0)
	}
	start := len(b.buf)
	b.buf = b.buf[:start+n]
	r := b.buf[start:]
	clear(r)
	if c.Client.Is6() {
		r[0] = typeInet6
	}
	r[1] = c.Protocol
	binary.BigEndian.PutUint16(r[2:4], uint16(n)&sverMask) // version 0 in the top bits
	binary.BigEndian.PutUint32(r[4:8], c.Flags&^FlagHashed)
	binary.BigEndian.PutUint16(r[8:10], c.State)
	binary.BigEndian.PutUint16(r[10:12], c.CPort)
	binary.BigEndian.PutUint16(r[12:14], c.VPort)
	binary.BigEndian.PutUint16(r[14:16], c.DPort)
	binary.BigEndian.PutUint32(r[16:20], c.FWMark)
	binary.BigEndian.PutUint32(r[20:24], c.Timeout)
	p := RecordV4Len
	if c.Client.Is6() {
		a, v, d := c.Client.As16(), c.VIP.As16(), c.Real.As16()
		copy(r[24:40], a[:])
		copy(r[40:56], v[:])
		copy(r[56:72], d[:])
		p = RecordV6Len
	} else {
		a, v, d := c.Client.As4(), c.VIP.As4(), c.Real.As4()
		copy(r[24:28], a[:])
		copy(r[28:32], v[:])
		copy(r[32:36], d[:])
	}
	if c.HasSeq {
		r[p], r[p+1] = OptSeqData, SeqOptLen
		putSeq(r[p+2:p+14], c.InSeq)
		putSeq(r[p+14:p+26], c.OutSeq)
		p += 2 + SeqOptLen
	}
	if len(c.PEData) > 0 {
		r[p], r[p+1] = OptPEData, byte(len(c.PEData))
		p += 2 + copy(r[p+2:], c.PEData)
		r[p], r[p+1] = OptPEName, byte(len(c.PEName))
		copy(r[p+2:], c.PEName)
	}
	b.count++
	b.buf[4] = byte(b.count)
	b.setSize()
	return true
}

// Bytes returns the message as built so far (without the MAC: see
// Signer). The slice aliases the Builder's buffer until the next Reset.
func (b *Builder) Bytes() []byte { return b.buf }
