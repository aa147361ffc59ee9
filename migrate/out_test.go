package migrate

import (
	"testing"

	"github.com/BurntSushi/toml"
)

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"tab\tnl\n", `"tab\u0009nl\u000A"`},
		{"del\x7f", `"del\u007F"`},
		{"bad\xffutf8", "\"bad\uFFFDutf8\""},
		{"ünï", `"ünï"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := quote(tt.in)
			if got != tt.want {
				t.Errorf("quote(%q) = %s, want %s", tt.in, got, tt.want)
			}
			var v struct{ K string }
			if _, err := toml.Decode("K = "+got, &v); err != nil {
				t.Errorf("not TOML: %v", err)
			}
		})
	}
}

func TestCommentSafe(t *testing.T) {
	for in, want := range map[string]string{
		"ok\tfine": "ok\tfine",
		"a\nb\rc":  "a?b?c",
		"x\xffy":   "x?y",
		"\x00\x7f": "??",
	} {
		if got := commentSafe(in); got != want {
			t.Errorf("commentSafe(%q) = %q, want %q", in, got, want)
		}
	}
}
