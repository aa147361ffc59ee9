package engine

// NATReals returns every (real, protocol, port) whose packets are NAT replies, port-0
// services included (Port 0: any port). The AF_XDP backend's program redirects exactly these.
func (s *Snapshot) NATReals() []NATReal {
	out := make([]NATReal, 0, len(s.natReal))
	for k := range s.natReal {
		out = append(out, NATReal{Addr: k.addr, Proto: k.proto, Port: k.port})
	}
	return out
}
