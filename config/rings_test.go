package config

import (
	"slices"
	"testing"
)

func TestDirectorRingAndShield(t *testing.T) {
	const head = "[director]\ninterfaces = [\"eth0\"]\n"
	for _, tt := range []struct {
		name, src string
		ring      RXRing
		shield    ShieldMode
		problems  []string
	}{
		{"defaults", head, DefaultRXRing, ShieldAuto, nil},
		{"v2 tcx", head + "rx_ring = \"v2\"\nshield = \"tcx\"\n", RXRingV2, ShieldTCX, nil},
		{"v3 nftables", head + "rx_ring = \"v3\"\nshield = \"nftables\"\n", RXRingV3, ShieldNftables, nil},
		{"bad", head + "rx_ring = \"v1\"\nshield = \"xdp\"\n", 0, 0, []string{
			`t.toml:3: director.rx_ring: unknown rx_ring "v1" (want v2 or v3)`,
			`t.toml:4: director.shield: unknown shield "xdp" (want auto, tcx or nftables)`,
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.problems != nil {
				if got := problems(t, tt.src); !slices.Equal(got, tt.problems) {
					t.Errorf("problems:\n%s\nwant:\n%s", quoteLines(got), quoteLines(tt.problems))
				}
				return
			}
			c, err := Parse("t.toml", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if c.Director.RXRing != tt.ring || c.Director.Shield != tt.shield {
				t.Errorf("rx_ring %v shield %v, want %v %v", c.Director.RXRing, c.Director.Shield, tt.ring, tt.shield)
			}
		})
	}
}
