package control

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/uvs-project/uvs/config"
)

// TestConfigTOMLKnowsEveryField fails when config gains a field that ConfigTOML does not
// write: a runtime edit renders the running config with ConfigTOML, so a field it forgot
// would be silently reset by every uvs edit.
//
// It needs no list of fields. Starting from a few valid configurations, it walks every
// field of config.Config by reflection, sets it to a value of its type that differs from
// the current one (from a pool per type), renders the result with ConfigTOML and parses it
// back with config.Parse. Each variant that parses must come back equal to what was
// rendered; a variant that does not parse only means the value is invalid there (a
// scheduler flag on the wrong scheduler), and another value or baseline is tried. Every
// field must round-trip a changed value in at least one baseline: a new field that no
// pooled value can set valid fails the test until the pool (or a baseline) learns it.
func TestConfigTOMLKnowsEveryField(t *testing.T) {
	baselines := []string{
		// TCP DR with [bgp]: a neighbour with a password file and BFD.
		`[director]
interfaces = ["eth0"]
[conntrack]
sloppy_tcp = true
[[service]]
vip = "198.18.1.100"
port = 80
scheduler = "mh"
  [[service.real]]
  address = "198.18.1.11"
[bgp]
asn = 65001
router_id = "198.18.1.2"
  [[bgp.neighbor]]
  address = "198.18.1.1"
  asn = 65000
  password_file = "/etc/uvs/bgp.key"
  bfd = true
`,
		// TCP, a tunnelled Maglev service with persistence and an HTTP check; the real
		// has its own HTTPS check.
		`[director]
interfaces = ["eth0"]
[[service]]
vip = "198.18.1.100"
port = 80
scheduler = "mh"
forward = "tun"
persistence_timeout = "60s"
  [service.check]
  type = "http"
  [[service.real]]
  address = "198.18.5.11"
    [service.real.check]
    type = "https"
`,
		// UDP, sh with persistence, a UDP check; the real has an exec check.
		`[director]
interfaces = ["eth0"]
[[service]]
vip = "198.18.1.100"
protocol = "udp"
port = 53
scheduler = "sh"
persistence_timeout = "60s"
  [service.check]
  type = "udp"
  payload = "ping"
  [[service.real]]
  address = "198.18.1.11"
    [service.real.check]
    type = "exec"
    command = ["/bin/true"]
`,
		// TCP DR on a list of ports with an HTTP check (via = "vip" applies to DR only).
		`[director]
interfaces = ["eth0"]
[[service]]
vip = "198.18.1.100"
ports = [80, 8080]
forward = "dr"
  [service.check]
  type = "http"
  [[service.real]]
  address = "198.18.1.11"
`,
		// VRRP: a v3 instance that owns a NAT gateway address, a v2 one (with PASS
		// authentication) that owns the service VIP by default, in a sync group.
		`[director]
interfaces = ["eth0", "eth1"]
[[service]]
name = "web"
vip = "198.18.1.100"
port = 80
  [[service.real]]
  address = "198.18.1.11"
[[vrrp_sync_group]]
name = "G1"
instances = ["VI_1", "VI_2"]
[[vrrp]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
version = 3
vips = ["198.18.3.1"]
[[vrrp]]
name = "VI_2"
interface = "eth0"
virtual_router_id = 52
`,
		`[director]
interfaces = ["eth0", "eth1"]
[[service]]
name = "web"
vip = "198.18.1.100"
port = 80
  [[service.real]]
  address = "198.18.1.11"
[[vrrp]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
vips = ["198.18.1.100"]
auth_type = "pass"
auth_pass = "x"
`,
		// TCP NAT with a TCP check, thresholds and a quorum.
		`[director]
interfaces = ["eth0"]
[[service]]
vip = "198.18.1.100"
port = 80
forward = "nat"
quorum = 3
  [service.check]
  type = "tcp"
  [[service.real]]
  address = "198.18.3.11"
  port = 8080
  weight = 3
  upper_threshold = 100
`,
		// Connection sync, unicast, with a key file (the key itself is a secret: skipped).
		`[director]
interfaces = ["eth0"]
[sync]
interface = "eth0"
role = "backup"
peers = ["198.18.0.2"]
key_file = "/etc/uvs/sync.key"
`,
		// Connection sync following a VRRP instance (a second one, named like a pooled
		// string, lets vrrp_instance change).
		`[director]
interfaces = ["eth0"]
[[vrrp]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = 100
vips = ["198.18.0.50"]
[[vrrp]]
name = "rr"
interface = "eth0"
virtual_router_id = 52
priority = 100
vips = ["198.18.0.51"]
[sync]
interface = "eth0"
vrrp_instance = "VI_1"
key_file = "/etc/uvs/sync.key"
`,
	}
	// skip: the fields ConfigTOML leaves out on purpose. Source and Line say where a config
	// came from; Lab and Bench describe the namespace lab and the benchmark profile (uvs lab,
	// uvs bench), which the running director ignores, so the running state that save
	// prints and edits render leaves them out.
	// BGP.Present is implied by [bgp] being written at all; an inline BGP password is never
	// written (Edit carries the running [bgp] over to the edited config instead).
	skip := map[string]bool{"Config.Source": true, "Config.Lab": true, "Config.Bench": true, "Service.Line": true, "Real.Line": true,
		"BGP.Line": true, "BGP.Present": true, "Neighbor.Line": true, "Neighbor.Password": true,
		"VRRP.Line": true, "VRRPSyncGroup.Line": true,
		// Sync.Key is a secret: uvs save leaves it out (TestSyncSaveHidesKey).
		"Sync.Key": true, "Sync.Line": true}
	covered := map[string]bool{}
	tried := map[string]bool{}
	for bi, src := range baselines {
		base, err := config.Parse(fmt.Sprintf("baseline%d.toml", bi), []byte(src))
		if err != nil {
			t.Fatalf("baseline %d: %v", bi, err)
		}
		if got := roundTrip(t, base); !sameConfig(got, base) {
			t.Fatalf("baseline %d does not round-trip:\n%s", bi, ConfigTOML(base))
		}
		baseText := ConfigTOML(base)
		var walk func(v reflect.Value, path string)
		walk = func(v reflect.Value, path string) {
			typ := v.Type()
			for i := 0; i < typ.NumField(); i++ {
				f := typ.Field(i)
				name := typ.Name() + "." + f.Name
				fv := v.Field(i)
				if !f.IsExported() || skip[name] {
					continue
				}
				switch {
				case f.Type.Kind() == reflect.Struct && !leafStruct(f.Type):
					walk(fv, path+"."+f.Name)
					continue
				case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct && !leafStruct(f.Type.Elem()):
					if fv.Len() > 0 {
						walk(fv.Index(0), path+"."+f.Name+"[0]")
					}
					continue
				case f.Type.Kind() == reflect.Pointer && fv.IsNil():
					// A nil *Check: setting it is covered by the baselines that have one.
					continue
				case f.Type.Kind() == reflect.Pointer:
					walk(fv.Elem(), path+"."+f.Name)
					continue
				}
				tried[name] = true
				old := reflect.ValueOf(fv.Interface())
				for _, cand := range candidates(f.Type) {
					if reflect.DeepEqual(cand.Interface(), old.Interface()) {
						continue
					}
					fv.Set(cand)
					text := ConfigTOML(base)
					out, perr := config.Parse("variant.toml", []byte(text))
					switch {
					case perr == nil && sameConfig(out, base):
						covered[name] = true
					case text == baseText:
						// The writer ignored the change. That is right where config refuses
						// the value (a host on a tcp check, checked by config's own tests)
						// and wrong elsewhere; the text alone cannot tell which, so the
						// field must round-trip in some baseline (below).
					}
					// A variant that does not parse, or parses to something else, holds a
					// value that a parsed config never holds there (port with ports).
					fv.Set(old)
				}
			}
		}
		// base is shared read-only by contract, but it is this test's own copy.
		walk(reflect.ValueOf(base).Elem(), "Config")
	}
	for name := range tried {
		if !covered[name] {
			t.Errorf("config field %s: no changed value round-tripped in any baseline; add a value of its type to candidates (or a baseline where it applies), then make ConfigTOML write it", name)
		}
	}
	if len(tried) < 50 {
		t.Errorf("only %d fields walked: the walk is broken", len(tried))
	}
}

// roundTrip renders cfg and parses it back.
func roundTrip(t *testing.T, cfg *config.Config) *config.Config {
	t.Helper()
	text := ConfigTOML(cfg)
	out, err := config.Parse("saved.toml", []byte(text))
	if err != nil {
		t.Fatalf("ConfigTOML output does not parse: %v\n%s", err, text)
	}
	return out
}

// leafStruct reports struct types that are values, not tables.
func leafStruct(t reflect.Type) bool {
	return t == reflect.TypeOf(netip.Addr{}) || t == reflect.TypeOf(netip.AddrPort{})
}

// sameConfig compares two configs but for what ConfigTOML leaves out on purpose.
func sameConfig(a, b *config.Config) bool {
	norm := func(c *config.Config) config.Config {
		n := *c
		n.Source, n.Lab, n.Bench = "", config.Lab{}, config.Bench{}
		if c.Sync != nil {
			s := *c.Sync
			s.Line = 0
			n.Sync = &s
		}
		n.BGP.Line = 0
		n.BGP.Neighbors = append([]config.Neighbor(nil), c.BGP.Neighbors...)
		for i := range n.BGP.Neighbors {
			n.BGP.Neighbors[i].Line = 0
		}
		n.Services = make([]config.Service, len(c.Services))
		for i, s := range c.Services {
			s.Line = 0
			s.Reals = append([]config.Real(nil), s.Reals...)
			for j := range s.Reals {
				s.Reals[j].Line = 0
			}
			n.Services[i] = s
		}
		n.VRRP = append([]config.VRRP(nil), c.VRRP...)
		for i := range n.VRRP {
			n.VRRP[i].Line = 0
		}
		n.VRRPSyncGroups = append([]config.VRRPSyncGroup(nil), c.VRRPSyncGroups...)
		for i := range n.VRRPSyncGroups {
			n.VRRPSyncGroups[i].Line = 0
		}
		return n
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// candidates returns values of type t to try, by type alone: the test knows no field.
// Several values per type so that each field finds one that is valid where it is
// (a prime for mh_table_size, a prefix length for persistence_netmask, a path for path).
func candidates(t reflect.Type) []reflect.Value {
	var vs []any
	switch t {
	case reflect.TypeOf(time.Duration(0)):
		vs = []any{3 * time.Second, 30 * time.Second, 1500 * time.Millisecond, 90 * time.Second}
	case reflect.TypeOf(netip.Addr{}):
		vs = []any{netip.MustParseAddr("198.18.9.9"), netip.MustParseAddr("198.18.1.77"), netip.MustParseAddr("224.0.0.18"), netip.MustParseAddr("2001:2:0:c8::9")}
	case reflect.TypeOf(netip.AddrPort{}):
		vs = []any{netip.MustParseAddrPort("198.18.1.99:80")}
	case reflect.TypeOf([]netip.AddrPort{}):
		vs = []any{[]netip.AddrPort{netip.MustParseAddrPort("198.18.0.9:8848")}}
	case reflect.TypeOf([]netip.Addr{}):
		vs = []any{[]netip.Addr{netip.MustParseAddr("198.18.9.9")}, []netip.Addr{netip.MustParseAddr("198.18.1.77"), netip.MustParseAddr("198.18.9.9")}}
	}
	if vs == nil {
		switch t.Kind() {
		case reflect.String:
			vs = []any{"rr", "eth1", "/healthz", "www.example.com", "127.0.0.1:9100", "0123456789abcdef0123456789abcdef", "/run/uvs/other.sock", "^ok"}
		case reflect.Bool:
			vs = []any{true, false}
		case reflect.Int:
			vs = []any{1, 2, 3, 7, 24, 1400, 4099, 9000, -60}
		case reflect.Uint16:
			vs = []any{443, 8443}
		case reflect.Uint32:
			vs = []any{65010, 4200000000}
		case reflect.Uint8: // the enums: every value up to a few past the last
			for i := 1; i < 8; i++ {
				vs = append(vs, i)
			}
		case reflect.Slice:
			switch t.Elem().Kind() {
			case reflect.String:
				vs = []any{[]string{"eth1", "eth2"}, []string{"web"}, []string{"VI_2", "VI_1"}, []string{"sh-port"}, []string{"mh-port", "mh-fallback"}, []string{"/bin/sh", "-c", "true"}}
			case reflect.Int:
				vs = []any{[]int{200, 204}}
			case reflect.Uint16:
				vs = []any{[]uint16{80, 443}}
			}
		}
	}
	out := make([]reflect.Value, 0, len(vs))
	for _, v := range vs {
		rv := reflect.ValueOf(v)
		if !rv.Type().ConvertibleTo(t) {
			continue
		}
		rv = rv.Convert(t)
		// An enum's invalid values print as "Type(n)": config.Parse never returns them.
		if st, ok := rv.Interface().(fmt.Stringer); ok && strings.HasSuffix(st.String(), ")") {
			continue
		}
		out = append(out, rv)
	}
	return out
}

func TestConfigTOMLCandidatesCoverTypes(t *testing.T) {
	// A field of a type with no candidates would never be tried; fail loudly instead.
	var seen []string
	var walk func(typ reflect.Type)
	walk = func(typ reflect.Type) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case typ.Name() == "Config" && (f.Name == "Lab" || f.Name == "Bench"):
			case ft.Kind() == reflect.Struct && !leafStruct(ft):
				walk(ft)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && !leafStruct(ft.Elem()):
				walk(ft.Elem())
			case len(candidates(ft)) == 0:
				seen = append(seen, typ.Name()+"."+f.Name+" ("+ft.String()+")")
			}
		}
	}
	walk(reflect.TypeOf(config.Config{}))
	if len(seen) > 0 {
		t.Errorf("no candidate values for: %s", strings.Join(seen, ", "))
	}
}
