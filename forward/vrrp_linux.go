package forward

import (
	"net/netip"
	"slices"

	"github.com/uvs-project/uvs/config"
)

// SetVRRPActive tells the data plane which addresses VRRP instances in master own: with
// [[vrrp]] configured, the director answers ARP and ping for, and forwards to, those VIPs
// only; the others (a backup's) are held back and counted as vrrp_backup drops. The new
// snapshot keeps every connection; the shield does not change. Safe from any goroutine.
func (d *Director) SetVRRPActive(active []netip.Addr) error {
	d.mu.Lock()
	changed := d.reg.SetVRRPActive(active)
	d.mu.Unlock()
	if !changed || d.snap.Load() == nil {
		return nil
	}
	return d.publish()
}

// vrrpAddrs appends to out the addresses of every [[vrrp]] instance that out lacks: a VRRP
// address need not be a service VIP (a NAT gateway), and an IPv6 one needs its
// solicited-node group joined whatever the instance's state, so that a takeover finds the
// NIC already listening for solicitations (the engine decides whether to answer them).
func vrrpAddrs(cfg *config.Config, out []netip.Addr) []netip.Addr {
	for i := range cfg.VRRP {
		for _, a := range cfg.OwnedVIPs(i) {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}
