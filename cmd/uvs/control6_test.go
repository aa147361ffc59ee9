package main

import "testing"

// TestServiceFlagsIPv6 takes -t and -u as ipvsadm does: VIP:PORT, or [VIP]:PORT for IPv6.
func TestServiceFlagsIPv6(t *testing.T) {
	for _, tt := range []struct {
		s       serviceFlags
		vip     string
		port    uint16
		wantErr bool
	}{
		{serviceFlags{tcp: "198.18.1.100:80"}, "198.18.1.100", 80, false},
		{serviceFlags{tcp: "[2001:2:0:1::100]:80"}, "2001:2:0:1::100", 80, false},
		{serviceFlags{udp: "[2001:db8::1]:53"}, "2001:db8::1", 53, false},
		{serviceFlags{tcp: "2001:2:0:1::100:80"}, "", 0, true},
		{serviceFlags{tcp: "[fe80::1%eth0]:80"}, "", 0, true},
		{serviceFlags{tcp: "[::ffff:198.18.1.100]:80"}, "", 0, true},
	} {
		ref, err := tt.s.ref()
		if tt.wantErr {
			if err == nil {
				t.Errorf("%+v: accepted as %+v", tt.s, ref)
			}
			continue
		}
		if err != nil || ref.VIP != tt.vip || ref.Port != tt.port {
			t.Errorf("%+v: %+v, %v", tt.s, ref, err)
		}
	}
}
