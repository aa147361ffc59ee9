package config

import (
	"net/netip"
	"slices"
	"testing"
)

func TestSyncIPv6(t *testing.T) {
	c := mustParse(t, head+"[sync]\ninterface = \"eth0\"\nrole = \"both\"\npeers = [\"2001:2:0:c7::2\", \"[2001:2:0:c7::3]:9000\"]\n")
	want := []netip.AddrPort{netip.MustParseAddrPort("[2001:2:0:c7::2]:8848"), netip.MustParseAddrPort("[2001:2:0:c7::3]:9000")}
	if !slices.Equal(c.Sync.Peers, want) || !c.Sync.IPv6() {
		t.Fatalf("peers %v, IPv6 %v", c.Sync.Peers, c.Sync.IPv6())
	}
	if c := mustParse(t, head+"[sync]\ninterface = \"eth0\"\nrole = \"both\"\ngroup = \"ff02::8:81\"\nkey = \"k\"\n"); !c.Sync.IPv6() {
		t.Fatal("an IPv6 group is not IPv6")
	}
	if c := mustParse(t, head+"[sync]\ninterface = \"eth0\"\nrole = \"both\"\nkey = \"k\"\n"); c.Sync.IPv6() {
		t.Fatal("the default group is IPv6")
	}
	got := problems(t, head+"[sync]\ninterface = \"eth0\"\nrole = \"both\"\npeers = [\"2001:2:0:c7::2\", \"198.18.0.3\", \"fe80::1\"]\n")
	wantP := []string{
		`t.toml:6: sync.peers[2]: fe80::1 is not a unicast IPv4 or global IPv6 address`,
		`t.toml:6: sync.peers[1]: 198.18.0.3 is not of the first peer's family: the sync socket is one family (IPv4 or IPv6; either carries IPv6 connections)`,
	}
	if !slices.Equal(got, wantP) {
		t.Errorf("problems:\n%s\nwant:\n%s", quoteLines(got), quoteLines(wantP))
	}
}
