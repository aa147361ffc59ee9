package forward

import (
	"testing"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/forward/privilege"
	"github.com/uvs-project/uvs/internal/testenv"
)

// TestIntegrationBackendCapabilities: the capabilities a director keeps follow the backend it
// will run, including the one auto falls back to: no CAP_IPC_LOCK (nor CAP_BPF, with the
// nftables shield) for afpacket. "lo" has an MTU above what afxdp takes, so auto falls back
// on it after the kernel probe passed (as root).
func TestIntegrationBackendCapabilities(t *testing.T) {
	testenv.RequireRoot(t)
	for _, tt := range []struct {
		name, director string
		want           uint64
	}{
		{"afxdp", `backend = "afxdp"`, privilege.AFXDPCaps},
		{"afpacket, tcx shield", `backend = "afpacket"`, privilege.ShieldCaps},
		{"afpacket, nftables shield", "backend = \"afpacket\"\nshield = \"nftables\"", 0},
		{"auto falls back to afpacket", ``, privilege.ShieldCaps},
		{"auto falls back to afpacket, nftables shield", `shield = "nftables"`, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("t.toml", []byte("[director]\ninterfaces = [\"lo\"]\nworkers = 1\n"+tt.director+`
[[service]]
vip = "198.18.1.100"
port = 80
  [[service.real]]
  address = "198.18.1.11"
`))
			if err != nil {
				t.Fatal(err)
			}
			if got := BackendCapabilities(cfg); got != tt.want {
				t.Errorf("capabilities %#x, want %#x", got, tt.want)
			}
		})
	}
}
