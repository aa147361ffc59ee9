package config

import (
	"testing"

	"github.com/BurntSushi/toml"
)

func TestQuoteReadsBack(t *testing.T) {
	for _, s := range []string{"", "eth0", `a"b`, `c:\dir`, "tab\there", "nl\n", "\x7f\x01", "ünï"} {
		var v struct{ K string }
		if _, err := toml.Decode("K = "+Quote(s), &v); err != nil || v.K != s {
			t.Errorf("%q: read back %q, %v", s, v.K, err)
		}
	}
}
