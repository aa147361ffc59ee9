package steer

// Hash is the value the fanout steering program computes for ip, an IPv4 packet without L2
// header (Ethernet padding may follow): the reference other backends' steering (the AF_XDP
// program) is tested against.
func Hash(ip []byte, vips []SteerVIP, nat []SteerNAT) uint32 { return steerHash(ip, vips, nat) }
