package control

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/uvs-project/uvs/config"
)

const bgpSecret = "very-secret-md5"

const bgpConf = `[director]
interfaces = ["eth0"]
[conntrack]
sloppy_tcp = true
[[service]]
vip = "198.18.0.10"
port = 80
scheduler = "mh"
  [[service.real]]
  address = "198.18.1.2"
[bgp]
asn = 65001
router_id = "198.18.0.2"
drain_time = "3s"
  [[bgp.neighbor]]
  address = "198.18.0.1"
  asn = 65000
  hold_time = "9s"
  password = "` + bgpSecret + `"
  bfd = true
  [[bgp.neighbor]]
  address = "198.18.0.5"
  asn = 65000
  password_file = "/etc/uvs/bgp.key"
`

func TestBGPSaveNeverShowsPassword(t *testing.T) {
	cfg, err := config.Parse("t.toml", []byte(bgpConf))
	if err != nil {
		t.Fatal(err)
	}
	out := ConfigTOML(cfg)
	if strings.Contains(out, bgpSecret) {
		t.Fatalf("uvs save shows the password:\n%s", out)
	}
	back, err := config.Parse("saved", []byte(out))
	if err != nil {
		t.Fatalf("saved config does not parse: %v\n%s", err, out)
	}
	b := back.BGP
	if !b.Present || b.ASN != 65001 || b.DrainTime != cfg.BGP.DrainTime || len(b.Neighbors) != 2 ||
		b.Neighbors[0].HoldTime != cfg.BGP.Neighbors[0].HoldTime || !b.Neighbors[0].BFD ||
		b.Neighbors[1].PasswordFile != "/etc/uvs/bgp.key" || b.Neighbors[0].Password != "" {
		t.Errorf("round trip: %+v", b)
	}
}

func TestBGPDiff(t *testing.T) {
	cur, err := config.Parse("a", []byte(bgpConf))
	if err != nil {
		t.Fatal(err)
	}
	next, err := config.Parse("b", []byte(strings.Replace(strings.Replace(bgpConf, bgpSecret, "other-secret", 1), `"3s"`, `"4s"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Diff(cur, next), "\n")
	want := "~ bgp: drain_time 3s -> 4s\n~ bgp neighbor 198.18.0.1: password changed (its session restarts)"
	if got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(got, "secret") {
		t.Error("diff shows a password")
	}
}

type fakeBGP struct {
	drained bool
}

func (f *fakeBGP) BGPStatus() *BGPStatus {
	return &BGPStatus{Sessions: []BGPSession{{Address: "198.18.0.1", ASN: 65000, State: "established"}},
		Announced: []string{"198.18.0.10/32"}, State: "up", Drained: f.drained}
}

func (f *fakeBGP) Drain(on bool) error { f.drained = on; return nil }

func TestBGPListAndDrain(t *testing.T) {
	f := &fakeBGP{}
	var o Operator
	o.log = slog.New(slog.DiscardHandler)
	o.SetBGP(f)
	if _, _, err := o.Edit(&Edit{Command: EditDrainDirector}); err != nil || !f.drained {
		t.Fatalf("drain: %v, drained %v", err, f.drained)
	}
	if _, _, err := o.Edit(&Edit{Command: EditUndrainDirector}); err != nil || f.drained {
		t.Fatalf("undrain: %v, drained %v", err, f.drained)
	}
	var none Operator
	none.log = slog.New(slog.DiscardHandler)
	if _, _, err := none.Edit(&Edit{Command: EditDrainDirector}); err == nil {
		t.Error("drain without [bgp] accepted")
	}
	js, _ := json.Marshal(&Status{BGP: f.BGPStatus()})
	if !strings.Contains(string(js), `"bgp":{"sessions":[{"address":"198.18.0.1","asn":65000,"state":"established"}],"announced":["198.18.0.10/32"]`) {
		t.Errorf("json: %s", js)
	}
	var b bytes.Buffer
	if err := WriteBGP(&b, f.BGPStatus()); err != nil {
		t.Fatal(err)
	}
	if s := b.String(); !strings.Contains(s, "198.18.0.1  65000  established") || !strings.Contains(s, "Announced: 198.18.0.10/32") {
		t.Errorf("text:\n%s", s)
	}
}

func TestBGPMetrics(t *testing.T) {
	want := `# HELP uvs_bgp_session_up 1 if the BGP session with the neighbour is established, else 0.
# TYPE uvs_bgp_session_up gauge
uvs_bgp_session_up{neighbor="198.18.0.1"} 1
`
	if err := testutil.CollectAndCompare(newBGPCollector(&fakeBGP{}), strings.NewReader(want), "uvs_bgp_session_up"); err != nil {
		t.Error(err)
	}
}
