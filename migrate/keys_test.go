package migrate

import (
	"strings"
	"testing"

	"github.com/uvs-project/uvs/config"
)

// TestTargetKeys fails once config accepts a key that targetKeys still
// marks unsupported, so that the switch gets flipped; and checks that
// flipping it makes the importers write the key instead of a note.
func TestTargetKeys(t *testing.T) {
	const head = "[director]\ninterfaces = [\"eth0\"]\n[[service]]\nvip = \"10.0.0.1\"\nport = 80\n"
	probes := map[string]string{
		"sorry_server": head + "sorry_server = \"10.0.0.9:80\"\n",
		"quorum":       head + "quorum = 2\n",
		"hysteresis":   head + "quorum = 2\nhysteresis = 1\n",
		"on_failure":   head + "on_failure = \"remove\"\n",
		"digest":       head + "[service.check]\ntype = \"http\"\ndigest = \"9e107d9d372bb6826bd81d3542a419d6\"\n",
		"warmup":       head + "[service.check]\ntype = \"tcp\"\nwarmup = \"3s\"\n",
		"payload":      head + "[service.check]\ntype = \"udp\"\npayload = \"ping\"\n",
		"expect":       head + "[service.check]\ntype = \"tcp\"\nexpect = \"^220\"\n",
	}
	for key, supported := range targetKeys {
		t.Run(key, func(t *testing.T) {
			probe, ok := probes[key]
			if !ok {
				t.Fatalf("no probe for %s", key)
			}
			_, err := config.Parse("probe.toml", []byte(probe))
			if accepted := err == nil; accepted != supported {
				t.Errorf("config.Parse accepts %s: %v, but targetKeys says %v; flip it in keys.go", key, accepted, supported)
			}
		})
	}

	// Flipping the switch writes the key.
	src := vs("sorry_server 10.0.9.9 8080\nquorum 2\nhysteresis 1\n", "inhibit_on_failure\nHTTP_GET {\nwarmup 3\nurl {\npath /\ndigest 9e107d9d372bb6826bd81d3542a419d6\n}\n}\n")
	saved := make(map[string]bool, len(targetKeys))
	for k, v := range targetKeys {
		saved[k] = v
		targetKeys[k] = true
	}
	defer func() {
		for k, v := range saved {
			targetKeys[k] = v
		}
	}()
	d := &doc{name: "k"}
	k := &kaImporter{d: d}
	for _, n := range k.parse("k", "", []byte(src), 0) {
		k.top(n)
	}
	text, _ := d.render()
	for _, l := range []string{`sorry_server = "10.0.9.9:8080"`, "quorum = 2", "hysteresis = 1", `on_failure = "quiesce"`,
		`digest = "9e107d9d372bb6826bd81d3542a419d6"`, `warmup = "3s"`} {
		if !containsLine(text, l) {
			t.Errorf("with the switch on, no line %q in\n%s", l, text)
		}
	}
	if strings.Contains(string(text), "uvs has no") {
		t.Errorf("with the switch on, still notes:\n%s", text)
	}
}
