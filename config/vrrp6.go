package config

import "net/netip"

// An instance speaks one address family, as in keepalived: VRRPv2 or v3 over IPv4 for IPv4
// VIPs, VRRPv3 over IPv6 (RFC 5798 §5.1.2, adverts to ff02::12 from the link-local address)
// for IPv6 VIPs, or with version = 2 keepalived's VRRPv2 over IPv6 (its default version). A
// dual-stack service has two instances, one per family.

// VRRPIPv6 reports whether instance i speaks VRRP over IPv6: its VIPs are IPv6, or with no
// VIPs its unicast_src_ip or first unicast_peer is.
func (c *Config) VRRPIPv6(i int) bool {
	if vips := c.OwnedVIPs(i); len(vips) > 0 {
		return is6(vips[0])
	}
	r := &c.VRRP[i]
	if r.UnicastSrcIP.IsValid() {
		return is6(r.UnicastSrcIP)
	}
	return len(r.UnicastPeer) > 0 && is6(r.UnicastPeer[0])
}

func is6(a netip.Addr) bool { return a.Is6() && !a.Is4In6() }

// vrrpFamily checks that every address of instance i (its VIPs, taken from the services when
// it lists none, unicast_src_ip and unicast_peer) is of the instance's family, and that an
// IPv6 instance has no auth_pass.
func (v *validator) vrrpFamily(c *Config, i int) {
	r := &c.VRRP[i]
	k := indexKey("vrrp", i)
	at := r.Line
	v6 := c.VRRPIPv6(i)
	fam := func(a netip.Addr) string {
		if is6(a) {
			return "IPv6"
		}
		return "IPv4"
	}
	want := "IPv4"
	if v6 {
		want = "IPv6"
	}
	// VRRPv2 is IPv4's (RFC 3768), but keepalived also speaks it over IPv6 (its default
	// version), with no authentication data: uvs pairs with that too.
	if v6 && r.AuthPass != "" {
		v.problem(k+".auth_pass", at, "an IPv6 instance carries no authentication data (keepalived's VRRPv2 over IPv6 neither)")
	}
	if r.VIPs == nil {
		for _, a := range c.OwnedVIPs(i) {
			if is6(a) != v6 {
				v.problem(k+".vips", at, "the service VIPs this instance takes are IPv4 and IPv6; an instance is one family: list the %s VIPs (%s) in an instance of their own", fam(a), a)
				break
			}
		}
	}
	for j, a := range r.VIPs {
		if a.IsValid() && is6(a) != v6 {
			v.problem(indexKey(k+".vips", j), at, "%s is %s, but the instance is %s (its first VIP): an instance is one family, as in keepalived; use one instance per family", a, fam(a), want)
		}
	}
	if r.UnicastSrcIP.IsValid() {
		v.ip(k+".unicast_src_ip", at, r.UnicastSrcIP, false)
		if is6(r.UnicastSrcIP) != v6 {
			v.problem(k+".unicast_src_ip", at, "%s is %s, but the instance is %s", r.UnicastSrcIP, fam(r.UnicastSrcIP), want)
		}
	}
	for j, a := range r.UnicastPeer {
		pk := indexKey(k+".unicast_peer", j)
		v.ip(pk, at, a, true)
		if a.IsValid() && is6(a) != v6 {
			v.problem(pk, at, "%s is %s, but the instance is %s", a, fam(a), want)
		}
	}
}
