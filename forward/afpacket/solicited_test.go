package afpacket

import "testing"

func TestSolicitedNode(t *testing.T) {
	for _, tt := range []struct {
		dst  []byte
		want bool
	}{
		{[]byte{0x33, 0x33, 0xff, 0, 1, 0}, true},     // ff02::1:ff00:100
		{[]byte{0x33, 0x33, 0, 0, 0, 1}, false},       // all nodes
		{[]byte{0x01, 0x00, 0x5e, 0, 0, 0x12}, false}, // IPv4 multicast (VRRP)
		{[]byte{0x33, 0x33}, false},
	} {
		if got := solicitedNode(tt.dst); got != tt.want {
			t.Errorf("solicitedNode(% x) = %v", tt.dst, got)
		}
	}
}
