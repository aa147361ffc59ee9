package bench

import "testing"

func TestWithBackendKey(t *testing.T) {
	in := "# c\n[director]\ninterfaces = [\"eth0\"]\nbackend = \"auto\"\n[lab]\nbackend = 1\n"
	want := "# c\n[director]\nbackend = \"afxdp\"\ninterfaces = [\"eth0\"]\n[lab]\nbackend = 1\n"
	if got := withBackendKey(in, "afxdp"); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := withBackendKey(in, ""); got != in {
		t.Errorf("empty backend changed the text:\n%s", got)
	}
}
