package bench

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestECMPLayout(t *testing.T) {
	l, err := layout(LabSpec{Prefix: "uvt1-", Topology: TopologyECMP, Directors: 3, Reals: 2})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range l.Nodes() {
		names = append(names, n.Name+"="+n.Addr.String())
	}
	want := []string{"client=198.18.9.10", "director=198.18.10.2", "director2=198.18.10.3", "director3=198.18.10.4",
		"router=198.18.9.1", "rs1=198.18.10.11", "rs2=198.18.10.12"}
	if !slices.Equal(names, want) {
		t.Errorf("nodes %v, want %v", names, want)
	}
	if l.Director != l.Directors[0] || len(l.DirectorIfaces) != 1 || l.VIP != ecmpVIP {
		t.Errorf("director %v, ifaces %v, vip %v", l.Director, l.DirectorIfaces, l.VIP)
	}
	conf := l.BirdConfig(3*time.Second, true, "k")
	for _, s := range []string{"merge paths on;", "neighbor 198.18.10.4 as 65001;", "hold time 3;", "export none;", "passive on;", "bfd on;", "password \"k\";", "protocol bfd {}"} {
		if !strings.Contains(conf, s) {
			t.Errorf("bird config lacks %q:\n%s", s, conf)
		}
	}
}

func TestParseVias(t *testing.T) {
	multi := "198.18.11.100 proto bird metric 32 \n\tnexthop via 198.18.10.2 dev eth1 weight 1 \n\tnexthop via 198.18.10.4 dev eth1 weight 1 \n"
	if got := parseVias(multi); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("198.18.10.2"), netip.MustParseAddr("198.18.10.4")}) {
		t.Errorf("multipath: %v", got)
	}
	if got := parseVias("198.18.11.100 via 198.18.10.3 dev eth1 proto bird metric 32\n"); len(got) != 1 || got[0].String() != "198.18.10.3" {
		t.Errorf("single: %v", got)
	}
	if got := parseVias(""); len(got) != 0 {
		t.Errorf("none: %v", got)
	}
}
