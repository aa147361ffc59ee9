package bgp

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/forward"
)

func TestDesiredFromSnapshot(t *testing.T) {
	cfg, err := config.Parse("t.toml", []byte(`[director]
interfaces = ["eth0"]
[[service]]
vip = "198.18.0.10"
port = 80
  [[service.real]]
  address = "198.18.1.2"
[[service]]
vip = "198.18.0.10"
port = 443
[[service]]
vip = "198.18.0.11"
port = 80
`))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := forward.BuildSnapshot(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	up := Director{Started: true, Alive: true}
	got, r := Desired(snap, up)
	// 198.18.0.11 has no real server at all: nothing healthy, not announced. 198.18.0.10
	// is announced once although two services share it.
	if want := []netip.Prefix{netip.MustParsePrefix("198.18.0.10/32")}; !slices.Equal(got, want) || r != ReasonUp {
		t.Errorf("Desired = %v %v, want %v up", got, r, want)
	}
	for _, tt := range []struct {
		d    Director
		want Reason
	}{
		{Director{Alive: true}, ReasonStarting},
		{Director{Started: true, Alive: true, Stopping: true}, ReasonStopping},
		{Director{Started: true, Alive: true, Drained: true}, ReasonDrained},
		{Director{Started: true}, ReasonDataPlane},
	} {
		if got, r := Desired(snap, tt.d); got != nil || r != tt.want {
			t.Errorf("%+v: %v %v, want none, %v", tt.d, got, r, tt.want)
		}
	}
	if got, r := Desired(nil, up); got != nil || r != ReasonStarting {
		t.Errorf("no snapshot: %v %v", got, r)
	}
}
