package config

// Backend is how the director's workers receive and send frames. The zero value is invalid.
type Backend uint8

// Backends.
const (
	BackendAuto     Backend = iota + 1 // afxdp where the kernel and the capabilities allow it, else afpacket.
	BackendAFPacket                    // AF_PACKET rings (PACKET_RX_RING, fanout); tx_mode applies.
	BackendAFXDP                       // AF_XDP sockets fed by an XDP program; tx_mode does not apply.
)

var backendNames = []string{BackendAuto: "auto", BackendAFPacket: "afpacket", BackendAFXDP: "afxdp"}

// String returns "auto", "afpacket" or "afxdp", as written in the configuration.
func (b Backend) String() string { return enumString("Backend", backendNames, b) }

// ParseBackend parses "auto", "afpacket" or "afxdp".
func ParseBackend(s string) (Backend, error) { return parseEnum[Backend]("backend", backendNames, s) }

// backend checks director.backend and the keys that apply to one backend only.
func (v *validator) backend(d *Director) {
	if !enumValid(backendNames, d.Backend) {
		v.problem("director.backend", 0, "must be %s", oneOf(backendNames[1:]))
		return
	}
	// tx_mode chooses between AF_PACKET's TX ring and sendmmsg; AF_XDP has its own TX ring.
	// The default (ring) is accepted with any backend; mmsg only where it applies.
	if d.Backend == BackendAFXDP && d.TXMode == TXMMsg {
		v.problem("director.tx_mode", 0, "applies to backend \"afpacket\" only (backend is \"afxdp\")")
	}
}

// benchBackends decodes bench.backends: afpacket or afxdp (auto measures nothing of its own).
func (d *decoder) benchBackends(t *table, dst *[]Backend) {
	var names []string
	if !t.strings("backends", &names) {
		return
	}
	*dst = (*dst)[:0]
	for i, n := range names {
		b, err := ParseBackend(n)
		if err != nil || b == BackendAuto {
			d.problem(indexKey(t.key("backends"), i), "unknown backend %q (want afpacket or afxdp)", n)
			d.hush(t.key("backends"))
			continue
		}
		*dst = append(*dst, b)
	}
}
