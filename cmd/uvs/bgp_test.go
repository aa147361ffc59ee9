package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckWarnsBGP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "uvs.toml")
	if err := os.WriteFile(path, []byte(`[director]
interfaces = ["eth0"]
[[service]]
vip = "198.18.0.10"
port = 80
scheduler = "rr"
  [[service.real]]
  address = "198.18.1.2"
[bgp]
asn = 65001
router_id = "198.18.0.2"
  [[bgp.neighbor]]
  address = "198.18.0.1"
  asn = 65000
  password = "never-shown"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if rc := run([]string{"check", "-c", path}, &out, &errOut); rc != 0 {
		t.Fatalf("check: rc %d\n%s", rc, errOut.String())
	}
	for _, want := range []string{"conntrack.sloppy_tcp: warning:", "service[0].scheduler: warning: rr with [bgp]"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("check stderr lacks %q:\n%s", want, errOut.String())
		}
	}
	if strings.Contains(out.String()+errOut.String(), "never-shown") {
		t.Error("check shows the password")
	}
}

func TestEditDrainDirectorFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if rc := run([]string{"edit", "--drain-director", "-t", "198.18.0.10:80"}, &out, &errOut); rc != 1 ||
		!strings.Contains(errOut.String(), "take no other flag but --socket") {
		t.Errorf("rc %d, stderr %q", rc, errOut.String())
	}
	errOut.Reset()
	sock := filepath.Join(t.TempDir(), "none.sock")
	if rc := run([]string{"edit", "--undrain-director", "--socket", sock}, &out, &errOut); rc != 1 ||
		!strings.Contains(errOut.String(), "no director at") {
		t.Errorf("rc %d, stderr %q", rc, errOut.String())
	}
}
