package engine

import (
	"fmt"

	"github.com/uvs-project/uvs/config"
)

// IPv4Only reports the first IPv6 address of cfg: config accepts IPv6 services (and IPv6
// reals behind IPv4 VIPs through a tunnel), but this engine's tables are keyed by IPv4
// addresses, so Build, NewDirector and Reload refuse them with an error naming the service instead of forwarding
// them wrongly.
func IPv4Only(cfg *config.Config) error {
	for i := range cfg.Services {
		cs := &cfg.Services[i]
		if cs.VIP.Is6() || cs.TunnelSource.Is6() || cs.SorryServer.Addr().Is6() {
			return fmt.Errorf("forward: service[%d] %s: the data plane does not forward IPv6 yet", i, cs.VIP)
		}
		for j := range cs.Reals {
			if cs.Reals[j].Address.Is6() {
				return fmt.Errorf("forward: service[%d] real[%d] %s: the data plane does not forward IPv6 yet", i, j, cs.Reals[j].Address)
			}
		}
	}
	return nil
}
