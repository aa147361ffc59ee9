package engine

import "github.com/uvs-project/uvs/conntrack"

// NATReals returns every (real, protocol, port) whose packets are NAT replies, port-0
// services included (Port 0: any port). The AF_XDP backend's program redirects exactly these.
func (s *Snapshot) NATReals() []NATReal {
	out := make([]NATReal, 0, len(s.natReal))
	for k := range s.natReal {
		out = append(out, natRealOf(k))
	}
	return out
}

// natRealOf is the NATReal of a snapshot key, in the family of its address.
func natRealOf(k svcKey) NATReal {
	n := NATReal{Proto: k.proto, Port: k.port}
	if conntrack.Is4(&k.addr) {
		n.Addr = [4]byte(k.addr[12:])
	} else {
		n.V6, n.Addr6 = true, k.addr
	}
	return n
}
