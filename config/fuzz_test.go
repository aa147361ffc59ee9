package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse checks that Parse never panics, that its errors are *Error with
// at least one problem naming the file, and that a Config it accepts is
// valid: validating it again, without any line information, finds nothing.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.toml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, tt := range problemCases {
		f.Add([]byte(tt.src))
	}
	f.Add([]byte(vrrpPair))
	f.Add([]byte(vhead + "[[vrrp]]\nname = \"a\"\ninterface = \"eth0\"\nvirtual_router_id = 1\nadvert_int = 0.5\nversion = 3\n"))
	f.Add([]byte(svc + "service = 1\n"))
	f.Add([]byte(bgpHead + "password_file = \"/k\"\nbfd = true\nhold_time = \"9s\"\n[bgp.x]\n"))
	f.Add([]byte(head + "service = [{vip = \"10.0.0.1\", port = 80, real = [{address = \"10.0.0.2\"}]}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.toml", data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			if len(e.Problems) == 0 {
				t.Fatal("*Error with no problems")
			}
			for _, p := range e.Problems {
				if p.File != "f.toml" || p.Line < 0 || p.Msg == "" {
					t.Fatalf("bad problem %+v", p)
				}
			}
			return
		}
		if ps := validate(c, func(string) int { return 0 }); len(ps) > 0 {
			t.Fatalf("Parse accepted a Config that does not re-validate: %v", ps)
		}
		c2, _ := Parse("f.toml", data)
		if !reflect.DeepEqual(c, c2) {
			t.Fatal("Parse is not deterministic")
		}
	})
}
