package bench

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/uvs-project/uvs/config"
)

// ConfigDual returns Config's text for a dual-stack lab (LabSpec.IPv6) with the same two
// services on VIP6 beside the IPv4 ones, reaching the real servers by their IPv6 addresses:
// "METHOD-tcp6-PORT" and "METHOD-udp6-9000".
func (l *Lab) ConfigDual(method, scheduler string, port, realPort int, dir string) string {
	var b strings.Builder
	b.WriteString(l.Config(method, scheduler, port, realPort, dir))
	AppendService(&b, fmt.Sprintf("%s-tcp6-%d", method, port), l.VIP6, "tcp", port, scheduler, method, l.RealAddrs6, realPort)
	AppendService(&b, fmt.Sprintf("%s-udp6-%d", method, UDPPort), l.VIP6, "udp", UDPPort, scheduler, method, l.RealAddrs6, UDPPort)
	return b.String()
}

// AppendService appends a [[service]] table for vip:port with one [[service.real]] per
// address of reals at realPort to a lab configuration's text.
func AppendService(b *strings.Builder, name string, vip netip.Addr, proto string, port int, scheduler, method string, reals []netip.Addr, realPort int) {
	fmt.Fprintf(b, "\n[[service]]\nname = %s\nvip = %s\nprotocol = %s\nport = %d\nscheduler = %s\nforward = %s\n",
		config.Quote(name), config.Quote(vip.String()), config.Quote(proto), port, config.Quote(scheduler), config.Quote(method))
	for _, a := range reals {
		fmt.Fprintf(b, "\n  [[service.real]]\n  address = %s\n  port = %d\n", config.Quote(a.String()), realPort)
	}
}
