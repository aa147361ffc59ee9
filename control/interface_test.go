package control

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/uvs-project/uvs/forward"
)

// TestInterfaceDocComplete fails when docs/interface.md misses a JSON field of uvs list,
// uvs list --conns or uvs trace, a metric name, or a drop reason: the document is the
// contract, and it must be complete.
func TestInterfaceDocComplete(t *testing.T) {
	b, err := os.ReadFile("../docs/interface.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var fields []string
	seen := map[reflect.Type]bool{}
	var walk func(typ reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
				fields = append(fields, name)
			}
			walk(f.Type)
		}
	}
	for _, v := range []any{Status{}, Connection{}, TraceResult{}} {
		walk(reflect.TypeOf(v))
	}
	for _, f := range fields {
		if !strings.Contains(doc, "`"+f+"`") {
			t.Errorf("JSON field %q is not in docs/interface.md", f)
		}
	}

	ch := make(chan *prometheus.Desc, 64)
	NewCollector(nil).Describe(ch)
	close(ch)
	name := regexp.MustCompile(`fqName: "([^"]+)"`)
	n := 0
	for d := range ch {
		m := name.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read the name of %s", d)
		}
		n++
		if !strings.Contains(doc, "`"+m[1]+"`") {
			t.Errorf("metric %s is not in docs/interface.md", m[1])
		}
	}
	if n < 20 {
		t.Errorf("only %d metrics described", n)
	}

	var st forward.EngineStats
	st.EachDrop(func(reason string, _ uint64) {
		if !strings.Contains(doc, "`"+reason+"`") {
			t.Errorf("drop reason %q is not in docs/interface.md", reason)
		}
	})
}
