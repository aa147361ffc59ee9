package bench

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/uvs-project/uvs/config"
)

// UDPPort is the port of the UDP echo service that Config adds beside the
// TCP one, on the VIP and on the real servers.
const UDPPort = 9000

// Config returns a uvs TOML configuration for the lab: a director on
// DirectorIfaces with 2 workers and its control socket dir/uvs.sock; a TCP
// service VIP:port with scheduler and forwarding method, one real per real
// server at realPort; and a UDP service VIP:UDPPort the same way, with reals
// at UDPPort. realPort may differ from port only with "nat".
func (l *Lab) Config(method, scheduler string, port, realPort int, dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# uvs lab %s (%v)\n[director]\ninterfaces = [", l.Spec.Prefix, l.Spec.Topology)
	for i, d := range l.DirectorIfaces {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(config.Quote(d))
	}
	fmt.Fprintf(&b, "]\nworkers = 2\ncontrol_socket = %s\n", config.Quote(filepath.Join(dir, "uvs.sock")))
	for _, svc := range []struct {
		proto          string
		port, realPort int
	}{{"tcp", port, realPort}, {"udp", UDPPort, UDPPort}} {
		fmt.Fprintf(&b, "\n[[service]]\nname = %s\nvip = %s\nprotocol = %s\nport = %d\nscheduler = %s\nforward = %s\n",
			config.Quote(fmt.Sprintf("%s-%s-%d", method, svc.proto, svc.port)), config.Quote(l.VIP.String()),
			config.Quote(svc.proto), svc.port, config.Quote(scheduler), config.Quote(method))
		for _, a := range l.RealAddrs {
			fmt.Fprintf(&b, "\n  [[service.real]]\n  address = %s\n  port = %d\n", config.Quote(a.String()), svc.realPort)
		}
	}
	return b.String()
}
