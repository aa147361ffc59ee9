package config

import (
	"testing"
)

func TestLineIndex(t *testing.T) {
	src := `# comment
top = 1
[director]
interfaces = [
  "eth0", # first
  "eth1",
]
workers = 2

[[service]]
name = "a" # [[not.a.header]]
note = """
multi
line = 3
"""
check.type = "tcp"
  [service.check]
  interval = "2s"
  [[service.real]]
  address = "10.0.0.1"
  [[service.real]]
  address = '10.0.0.2'
  weight = 3
    [service.real.check]
    type = "exec"

[[service]]
"quoted.key" = 1
inline = { a = 1, b = { c = [1, 2] } }
lit = '''x
y'''
  [[service.real]]
  weight = 9
[ timeouts ]
tcp = 5
`
	ix := indexLines([]byte(src))
	tests := []struct {
		key  string
		want int
	}{
		{"top", 2},
		{"director", 3},
		{"director.interfaces", 4},
		{"director.interfaces[0]", 5},
		{"director.interfaces[1]", 6},
		{"director.workers", 8},
		{"service", 10},
		{"service[0]", 10},
		{"service[0].name", 11},
		{"service[0].note", 12},
		{"service[0].check.type", 16},
		{"service[0].check", 16}, // First seen as a dotted key.
		{"service[0].check.interval", 18},
		{"service[0].real[0]", 19},
		{"service[0].real[0].address", 20},
		{"service[0].real[1]", 21},
		{"service[0].real[1].weight", 23},
		{"service[0].real[1].check", 24},
		{"service[0].real[1].check.type", 25},
		{"service[0].real[1].nosuchkey", 21},
		{"service[1]", 27},
		{`service[1]."quoted.key"`, 28},
		{"service[1].inline.a", 29},
		{"service[1].inline.b.c[1]", 29},
		{"service[1].lit", 30},
		{"service[1].real[0]", 32},
		{"service[1].real[0].weight", 33},
		{"timeouts.tcp", 35},
		{"nothing.here", 0},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := ix.line(tt.key); got != tt.want {
				t.Errorf("line(%q) = %d, want %d", tt.key, got, tt.want)
			}
		})
	}
}

func TestParentKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a", ""},
		{"a.b", "a"},
		{"a[3]", "a"},
		{"service[1].real[0].weight", "service[1].real[0]"},
		{`a."b.c"`, "a"},
		{`a."b[1]\"x"`, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := parentKey(tt.in); got != tt.want {
				t.Errorf("parentKey(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzLineIndex(f *testing.F) {
	f.Add([]byte("[[a]]\nb = [1, {c = '''x\n'''}]\n"))
	f.Add([]byte(`a = "\"`))
	f.Add([]byte("[[a.b]]\n[a]\n[[a.b]]"))
	f.Fuzz(func(t *testing.T, src []byte) {
		ix := indexLines(src)
		for k := range ix {
			ix.line(k + ".x[1]")
		}
	})
}
