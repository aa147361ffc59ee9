package forward

import "net/netip"

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
