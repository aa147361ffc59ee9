package control

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/uvs-project/uvs/config"
)

// writeVRRPTOML renders the [[vrrp]] and [[vrrp_sync_group]] sections, so that a saved
// config and a runtime edit (which re-parses ConfigTOML) keep them. auth_pass is written:
// VRRPv2 PASS authentication is clear text on the wire, not a secret.
func writeVRRPTOML(b *strings.Builder, cfg *config.Config) {
	for _, g := range cfg.VRRPSyncGroups {
		fmt.Fprintf(b, "\n[[vrrp_sync_group]]\nname = %s\ninstances = %s\n", config.Quote(g.Name), tomlStrings(g.Instances))
	}
	for i := range cfg.VRRP {
		r := &cfg.VRRP[i]
		fmt.Fprintf(b, "\n[[vrrp]]\nname = %s\ninterface = %s\nvirtual_router_id = %d\npriority = %d\nadvert_int = %s\n",
			config.Quote(r.Name), config.Quote(r.Interface), r.VirtualRouterID, r.Priority, tomlDuration(r.AdvertInt))
		state := "backup"
		if r.InitialMaster {
			state = "master"
		}
		fmt.Fprintf(b, "state = %s\nnopreempt = %t\npreempt_delay = %s\nversion = %d\n", config.Quote(state), r.NoPreempt, tomlDuration(r.PreemptDelay), r.Version)
		if r.UnicastSrcIP.IsValid() {
			fmt.Fprintf(b, "unicast_src_ip = %s\n", config.Quote(r.UnicastSrcIP.String()))
		}
		if len(r.UnicastPeer) > 0 {
			fmt.Fprintf(b, "unicast_peer = %s\n", tomlAddrs(r.UnicastPeer))
		}
		if r.VIPs != nil {
			fmt.Fprintf(b, "vips = %s\n", tomlAddrs(r.VIPs))
		}
		fmt.Fprintf(b, "garp_master_delay = %s\ngarp_master_repeat = %d\ngarp_master_refresh = %s\n",
			tomlDuration(r.GARPMasterDelay), r.GARPMasterRepeat, tomlDuration(r.GARPMasterRefresh))
		for _, n := range []struct {
			key  string
			argv []string
		}{{"notify_master", r.NotifyMaster}, {"notify_backup", r.NotifyBackup}, {"notify_fault", r.NotifyFault}} {
			if n.argv != nil {
				fmt.Fprintf(b, "%s = %s\n", n.key, tomlStrings(n.argv))
			}
		}
		fmt.Fprintf(b, "notify_timeout = %s\n", tomlDuration(r.NotifyTimeout))
		if len(r.TrackInterface) > 0 {
			fmt.Fprintf(b, "track_interface = %s\n", tomlStrings(r.TrackInterface))
		}
		if len(r.TrackService) > 0 {
			fmt.Fprintf(b, "track_service = %s\n", tomlStrings(r.TrackService))
		}
		if r.TrackWeight != 0 {
			fmt.Fprintf(b, "track_weight = %d\n", r.TrackWeight)
		}
		if r.ChecksumAsV2 {
			b.WriteString("v3_checksum_as_v2 = true\n")
		}
		if r.AuthPass != "" {
			fmt.Fprintf(b, "auth_type = \"pass\"\nauth_pass = %s\n", config.Quote(r.AuthPass))
		}
	}
}

func tomlAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return tomlStrings(s)
}
