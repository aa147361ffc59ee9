package control

import (
	"fmt"
	"strings"

	"github.com/uvs-project/uvs/config"
)

// diffVRRP lists [[vrrp]] and [[vrrp_sync_group]] changes: "~" for keys a reload applies,
// "!" for those that need a restart (a reload refuses them).
func diffVRRP(cur, next *config.Config) []string {
	var out []string
	for i := range next.VRRP {
		n := &next.VRRP[i]
		o := cur.VRRPByName(n.Name)
		if o == nil {
			out = append(out, fmt.Sprintf("! + vrrp %s: adding an instance needs a restart", n.Name))
			continue
		}
		var ch, restart []string
		field := func(list *[]string, what string, a, b any) {
			if fmt.Sprint(a) != fmt.Sprint(b) {
				*list = append(*list, fmt.Sprintf("%s %v -> %v", what, a, b))
			}
		}
		field(&restart, "interface", o.Interface, n.Interface)
		field(&restart, "virtual_router_id", o.VirtualRouterID, n.VirtualRouterID)
		field(&restart, "version", o.Version, n.Version)
		field(&restart, "unicast_src_ip", o.UnicastSrcIP, n.UnicastSrcIP)
		if (len(o.UnicastPeer) == 0) != (len(n.UnicastPeer) == 0) {
			field(&restart, "unicast_peer", o.UnicastPeer, n.UnicastPeer)
		} else {
			field(&ch, "unicast_peer", o.UnicastPeer, n.UnicastPeer)
		}
		field(&ch, "priority", o.Priority, n.Priority)
		field(&ch, "advert_int", o.AdvertInt, n.AdvertInt)
		field(&ch, "state", o.InitialMaster, n.InitialMaster)
		field(&ch, "nopreempt", o.NoPreempt, n.NoPreempt)
		field(&ch, "preempt_delay", o.PreemptDelay, n.PreemptDelay)
		field(&ch, "vips", cur.OwnedVIPs(vrrpIndex(cur, o.Name)), next.OwnedVIPs(i))
		field(&ch, "garp", fmt.Sprint(o.GARPMasterDelay, o.GARPMasterRepeat, o.GARPMasterRefresh), fmt.Sprint(n.GARPMasterDelay, n.GARPMasterRepeat, n.GARPMasterRefresh))
		field(&ch, "notify", fmt.Sprint(o.NotifyMaster, o.NotifyBackup, o.NotifyFault, o.NotifyTimeout), fmt.Sprint(n.NotifyMaster, n.NotifyBackup, n.NotifyFault, n.NotifyTimeout))
		field(&ch, "tracking", fmt.Sprint(o.TrackInterface, o.TrackService, o.TrackWeight), fmt.Sprint(n.TrackInterface, n.TrackService, n.TrackWeight))
		field(&ch, "v3_checksum_as_v2", o.ChecksumAsV2, n.ChecksumAsV2)
		if o.AuthPass != n.AuthPass {
			ch = append(ch, "auth_pass changed")
		}
		if len(restart) > 0 {
			out = append(out, fmt.Sprintf("! vrrp %s: %s: a reload refuses this; restart uvs", n.Name, strings.Join(restart, "; ")))
		}
		if len(ch) > 0 {
			out = append(out, fmt.Sprintf("~ vrrp %s: %s", n.Name, strings.Join(ch, "; ")))
		}
	}
	for i := range cur.VRRP {
		if next.VRRPByName(cur.VRRP[i].Name) == nil {
			out = append(out, fmt.Sprintf("! - vrrp %s: removing an instance needs a restart", cur.VRRP[i].Name))
		}
	}
	if !sameGroups(cur.VRRPSyncGroups, next.VRRPSyncGroups) {
		out = append(out, "! vrrp_sync_group changed: a reload refuses this; restart uvs")
	}
	return out
}

func vrrpIndex(c *config.Config, name string) int {
	for i := range c.VRRP {
		if c.VRRP[i].Name == name {
			return i
		}
	}
	return -1
}

// sameGroups compares sync groups by name and members, not by line.
func sameGroups(a, b []config.VRRPSyncGroup) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || strings.Join(a[i].Instances, ",") != strings.Join(b[i].Instances, ",") {
			return false
		}
	}
	return true
}
