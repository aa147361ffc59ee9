package control

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fixture is a listing with every kind of row: DR, TUN and NAT reals, a persistent service
// with a netmask, a UDP one-packet service, and counters on each side of the K/M/G/T steps.
func fixture() *Status {
	return &Status{
		ConnTableSize: 4096,
		Timeouts:      Timeouts{TCP: 900, TCPFin: 120, UDP: 300},
		Services: []Service{
			{
				Protocol: "tcp", VIP: "198.18.0.100", Port: 80, Scheduler: "rr",
				Stats: Stats{Conns: 123, InPackets: 99_999_999, OutPackets: 100_000_000, InBytes: 99_999_999_999, OutBytes: 123_456_789_012_345_678},
				Rates: Rates{CPS: 12, InPPS: 345, OutPPS: 0, InBPS: 1_500_000_000, OutBPS: 7},
				Reals: []Real{
					{Address: "198.18.1.11", Port: 80, Forward: "dr", Weight: 1, ActiveConns: 3, InactiveConns: 10, PersistConns: 0,
						UpperThreshold: 100, LowerThreshold: 50, Stats: Stats{Conns: 60, InPackets: 600, InBytes: 60_000}, Rates: Rates{CPS: 6, InPPS: 60, InBPS: 6000}},
					{Address: "198.18.1.12", Port: 8080, Forward: "nat", Weight: 0, ActiveConns: 0, InactiveConns: 2,
						Stats: Stats{Conns: 63, InPackets: 630, OutPackets: 700, InBytes: 63_000, OutBytes: 9_000_000_000}},
					{Address: "198.18.1.13", Port: 80, Forward: "tun", Weight: 65535},
				},
			},
			{
				Protocol: "tcp", VIP: "198.18.0.101", Port: 443, Scheduler: "wlc",
				PersistenceTimeoutS: 300, PersistenceNetmask: "255.255.255.0",
				Reals: []Real{{Address: "198.18.1.11", Port: 443, Forward: "dr", Weight: 2, ActiveConns: 1, PersistConns: 4}},
			},
			{
				Protocol: "udp", VIP: "198.18.0.100", Port: 9000, Scheduler: "sh", OnePacket: true,
				PersistenceTimeoutS: 60, PersistenceNetmask: "255.255.255.255",
				Reals: []Real{{Address: "198.18.1.11", Port: 9000, Forward: "dr", Weight: 1, InactiveConns: 5}},
			},
		},
	}
}

func fixtureConns() []Connection {
	return []Connection{
		{Protocol: "tcp", Client: "198.19.0.10:40000", VIP: "198.18.0.100:80", Real: "198.18.1.11:80", State: "ESTABLISHED", ExpiresS: 899},
		{Protocol: "tcp", Client: "198.19.0.0:0", VIP: "198.18.0.101:443", Real: "198.18.1.11:443", State: "NONE", ExpiresS: 61, Template: true},
		{Protocol: "udp", Client: "198.19.0.10:5353", VIP: "198.18.0.100:9000", Real: "198.18.1.11:9000", State: "UDP", ExpiresS: 5},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s:\n--- got\n%s--- want\n%s", name, path, got, want)
	}
}

func TestListGolden(t *testing.T) {
	tests := []struct {
		name string
		l    Layout
	}{
		{"list", Layout{}},
		{"stats", Layout{Stats: true}},
		{"stats-exact", Layout{Stats: true, Exact: true}},
		{"rate", Layout{Rate: true}},
		{"thresholds", Layout{Thresholds: true}},
		{"persistent-conn", Layout{PersistentConn: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteList(&b, fixture(), tt.l); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name, b.Bytes())
		})
	}
	t.Run("one-service", func(t *testing.T) {
		st := fixture()
		st.Services = st.Services[1:2]
		var b bytes.Buffer
		_ = WriteList(&b, st, Layout{One: true})
		golden(t, "one-service", b.Bytes())
	})
	t.Run("conns", func(t *testing.T) {
		var b bytes.Buffer
		_ = WriteConns(&b, fixtureConns(), false)
		golden(t, "conns", b.Bytes())
	})
	t.Run("conns-persistent", func(t *testing.T) {
		var b bytes.Buffer
		_ = WriteConns(&b, fixtureConns(), true)
		golden(t, "conns-persistent", b.Bytes())
	})
	t.Run("timeout", func(t *testing.T) {
		var b bytes.Buffer
		_ = WriteTimeout(&b, fixture().Timeouts)
		golden(t, "timeout", b.Bytes())
	})
}

// TestListColumnsUnderHeaders checks the property scripts rely on: in ipvsadm's layouts
// each field of a real server row starts in the column where its header starts (the
// headers are ipvsadm's literal title strings).
func TestListColumnsUnderHeaders(t *testing.T) {
	var b bytes.Buffer
	_ = WriteList(&b, fixture(), Layout{})
	lines := strings.Split(b.String(), "\n")
	header := lines[2]
	if header != "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn" {
		t.Fatalf("header %q", header)
	}
	cols := map[string]int{}
	for _, h := range []string{"Forward", "Weight", "ActiveConn", "InActConn"} {
		cols[h] = strings.Index(header, h)
	}
	row := lines[4] // first real of the first service
	for h, want := range map[string]string{"Forward": "Route", "Weight": "1", "ActiveConn": "3", "InActConn": "10"} {
		c := cols[h]
		if !strings.HasPrefix(row[c:], want+" ") && row[c:] != want {
			t.Errorf("column %s at %d of %q: want %q", h, c, row, want)
		}
	}
	for _, l := range []Layout{{Stats: true}, {Rate: true}} {
		b.Reset()
		_ = WriteList(&b, fixture(), l)
		lines := strings.Split(b.String(), "\n")
		// Right-aligned numbers end where their 8-wide header ends.
		for _, row := range lines[3:6] {
			if len(row) != len(lines[1]) {
				t.Errorf("row %q is %d wide, header %q %d", row, len(row), lines[1], len(lines[1]))
			}
		}
	}
}

func TestLargeNum(t *testing.T) {
	tests := []struct {
		in    uint64
		exact bool
		want  string
	}{
		{0, false, "        0"},
		{99_999_999, false, " 99999999"},
		{100_000_000, false, "  100000K"},
		{999_999_999, false, "  999999K"},
		{1_000_000_000, false, "    1000M"},
		{99_999_999_999, false, "   99999M"},
		{100_000_000_000, false, "     100G"},
		{100_000_000_000_000, false, "     100T"},
		{12345678, true, " 12345678"},
		{123456789, true, " 123456789"},
	}
	for _, tt := range tests {
		if got := largeNum(tt.in, tt.exact); got != tt.want {
			t.Errorf("largeNum(%d, %v) = %q, want %q", tt.in, tt.exact, got, tt.want)
		}
	}
}

// TestListMatchesIPVSADMSource compares uvs list with files written by hand from ipvsadm's
// source of its output format (testdata/ipvsadm-source/README.md), not by -update: the
// other golden files only show that the output did not change.
func TestListMatchesIPVSADMSource(t *testing.T) {
	st := &Status{
		ConnTableSize: 4096,
		Services: []Service{
			{
				Protocol: "tcp", VIP: "198.18.0.100", Port: 80, Scheduler: "rr",
				Stats: Stats{Conns: 1234, InPackets: 99_999_999, OutPackets: 100_000_000, InBytes: 5_000_000_000, OutBytes: 123_456_789_012_345},
				Reals: []Real{
					{Address: "198.18.1.11", Port: 80, Forward: "dr", Weight: 1, ActiveConns: 3, InactiveConns: 10,
						Stats: Stats{Conns: 600, InPackets: 600, InBytes: 60_000}},
					{Address: "198.18.1.12", Port: 8080, Forward: "nat", Weight: 0, InactiveConns: 2,
						Stats: Stats{Conns: 634, InPackets: 700, OutPackets: 800, InBytes: 1_000_000_000, OutBytes: 99_999_999_999}},
				},
			},
			{
				Protocol: "udp", VIP: "198.18.0.100", Port: 53, Scheduler: "sh", OnePacket: true,
				PersistenceTimeoutS: 60, PersistenceNetmask: "255.255.255.0",
				Reals: []Real{{Address: "198.18.1.13", Port: 53, Forward: "tun", Weight: 65535}},
			},
		},
	}
	for _, tt := range []struct {
		file string
		l    Layout
	}{
		{"list.txt", Layout{}},
		{"stats.txt", Layout{Stats: true}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("testdata", "ipvsadm-source", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := WriteList(&b, st, tt.l); err != nil {
				t.Fatal(err)
			}
			if b.String() != string(want) {
				t.Errorf("uvs list differs from ipvsadm's format:\n--- uvs\n%s--- ipvsadm\n%s", b.String(), want)
			}
		})
	}
}
