package migrate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/uvs-project/uvs/config"
)

// addSeeds adds every file under testdata/dir to f's corpus.
func addSeeds(f *testing.F, dir string) {
	files, _ := filepath.Glob(filepath.Join("testdata", dir, "*"))
	if len(files) == 0 {
		f.Fatalf("no seeds in testdata/%s", dir)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// checkImport holds for any input: no panic (the fuzzer sees one), an
// error is an *Error whose problems name the file and a line, and a
// result parses with config.Parse and carries each note as a comment.
func checkImport(t *testing.T, res *Result, err error) {
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %T is not *Error: %v", err, err)
		}
		if len(e.Problems) == 0 {
			t.Fatal("*Error with no problems")
		}
		for _, p := range e.Problems {
			if p.File == "" || p.Line < 1 || p.Msg == "" {
				t.Fatalf("problem without a location or message: %+v", p)
			}
		}
		return
	}
	if _, err := config.Parse("out.toml", res.TOML); err != nil {
		t.Fatalf("config.Parse rejects the output: %v\n%s", err, res.TOML)
	}
	for _, n := range res.Notes {
		if !strings.Contains(string(res.TOML), commentSafe(n.String())) {
			t.Fatalf("note %q is not in the output", n)
		}
	}
}

func FuzzImportIpvsadm(f *testing.F) {
	addSeeds(f, "ipvsadm")
	f.Add([]byte("-A -t 10.0.0.1:0 -p -M 0\n-a -t 10.0.0.1:0 -r 10.0.1.1:0 -m -x 1 -y 1\n"))
	f.Add([]byte("-A -f 1\n-A -t 10.0.0.1:80\n-a -f 1 -r 10.0.1.1:80 -g\n"))
	f.Add([]byte("-A -u 10.0.0.1:53 -s mh -b mh-port,mh-port -o\n-E -u 10.0.0.1:53 -s sh\n"))
	// Found a duplicate DR real (10.0.0.81 and 10.0.0.81: are both port 80)
	// that config.Parse rejected.
	f.Add([]byte("-A -t 10.0.0.13:80 -b 000 -p 10\n-a -t 10.0.0.13:80 -r 10.0.0.81\n-a -t 10.0.0.13:80 -r 10.0.0.81:"))
	opt := Options{Fwmarks: map[uint32]Fwmark{1: {VIP: mustAddr("10.0.0.1"), Ports: []uint16{80, 443}}}}
	rules, err := os.ReadFile("testdata/iptables-save.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("-A -f 2\n-A -f 1\n-A -t 207.175.44.110:443\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Ipvsadm("f.txt", data, opt)
		checkImport(t, res, err)
		// The same input as iptables rules, for marks 1 to 3.
		marked := Options{Iptables: &Source{Name: "ipt", Data: data}}
		res, err = Ipvsadm("f.txt", []byte("-A -f 1\n-A -f 2\n-A -f 3 -p\n-a -f 3 -r 10.0.1.1:80 -g\n"), marked)
		checkImport(t, res, err)
		marked = Options{Iptables: &Source{Name: "ipt", Data: rules}}
		res, err = Ipvsadm("f.txt", data, marked)
		checkImport(t, res, err)
	})
}

func FuzzImportKeepalived(f *testing.F) {
	addSeeds(f, "keepalived")
	f.Add([]byte("include inc.conf\ninclude /etc/keepalived/inc.conf\n"))
	f.Add([]byte("global_defs {\nrouter_id a\nlvs_sync_daemon eth0 VI_1 id 5 maxlen 1400 port 8848 ttl 1 group 224.0.0.81\n}\n"))
	f.Add([]byte("virtual_server fwmark 1 {\nreal_server 10.0.1.1 8080 {\nHTTP_GET {\nurl {\npath x\"\n}\n}\n}\n}\n"))
	// Found misc_path in SSL_GET giving an https check a command.
	f.Add([]byte("virtual_server fwmark 1{delay_loop 1!000000000\nreal_server 0.0.0.0{SSL_GET{misc_path\"0\" }}}"))
	// Found a vrrp_instance without virtual_router_id converted to a [[vrrp]] config rejects.
	f.Add([]byte("vrrp_instance 0{interface 0}"))
	// Found virtual_router_id 01 written as a TOML integer with a leading zero.
	f.Add([]byte("vrrp_instance 0000{\ninterface 0000\nvirtual_router_id 01}"))
	// Found a vrrp_sync_group without instances carried over.
	f.Add([]byte("vrrp_sync_group 00{}"))
	// Found a keyword given twice in a vrrp_instance written as a duplicate TOML key.
	f.Add([]byte("vrrp_instance 0000{\ninterface 0\nvirtual_router_id 1\nvirtual_router_id 1}"))
	f.Add([]byte(kaVRRPConf))
	inc := &Include{FS: fstest.MapFS{"inc.conf": {Data: []byte("virtual_server 10.0.0.9 80 {\nlb_kind DR\n}\n")}}, Dir: "/etc/keepalived"}
	opt := Options{Include: inc, Fwmarks: map[uint32]Fwmark{1: {VIP: mustAddr("10.0.0.1"), Ports: []uint16{80, 443}, Protocol: "udp"}}}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Keepalived("f.conf", data, opt)
		checkImport(t, res, err)
	})
}
