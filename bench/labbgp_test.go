package bench

import (
	"errors"
	"strings"
	"testing"

	"github.com/uvs-project/uvs/config"
)

const bgpLabConf = `[director]
interfaces = ["eth0"]
[conntrack]
sloppy_tcp = true
[lab]
prefix = "uvt1-"
directors = 3
[[service]]
vip = "198.18.40.100"
port = 80
scheduler = "mh"
  [[service.real]]
  address = "198.18.30.11"
  [[service.real]]
  address = "198.18.30.3"
[bgp]
asn = 65001
router_id = "198.18.30.2"
  [[bgp.neighbor]]
  address = "198.18.30.1"
  asn = 65000
`

func TestLayoutBGP(t *testing.T) {
	cfg, err := config.Parse("t.toml", []byte(bgpLabConf))
	if err != nil {
		t.Fatal(err)
	}
	lay, err := LayoutConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := lay.Describe()
	for _, want := range []string{"client    uvt1-client            eth0 198.18.31.10/24",
		"director  uvt1-director          eth0 198.18.30.2/24", "director2 uvt1-director2         eth0 198.18.30.4/24",
		"director3 uvt1-director3         eth0 198.18.30.5/24",
		"router    uvt1-router            eth0 198.18.31.1/24 eth1 198.18.30.1/24"} {
		if !strings.Contains(got, want) {
			t.Errorf("layout lacks %q:\n%s", want, got)
		}
	}
	bad, _ := config.Parse("t.toml", []byte(strings.Replace(bgpLabConf, `address = "198.18.30.1"`, `address = "198.18.50.1"`, 1)))
	if _, err := LayoutConfig(bad); !errors.Is(err, ErrLayout) || !strings.Contains(err.Error(), "not in 198.18.30.0/24") {
		t.Errorf("router elsewhere: %v", err)
	}
	two, _ := config.Parse("t.toml", []byte(strings.Replace(bgpLabConf, "[bgp]", "[bgpx]", 1)))
	if two != nil {
		t.Fatal("parse of an unknown table")
	}
}

func TestDirectorCopy(t *testing.T) {
	out, err := directorCopy([]byte(bgpLabConf), "198.18.30.4", "/run/x.sock")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("copy.toml", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if cfg.BGP.RouterID.String() != "198.18.30.4" || cfg.Director.ControlSocket != "/run/x.sock" {
		t.Errorf("router_id %s, socket %s", cfg.BGP.RouterID, cfg.Director.ControlSocket)
	}
}
