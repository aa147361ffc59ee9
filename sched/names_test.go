package sched

import (
	"maps"
	"slices"
	"testing"

	"github.com/uvs-project/uvs/config"
)

// TestNamesMatchConfig: config.Schedulers and config.SchedulerFlags are the one list of
// names the project accepts; sched, which imports nothing from the project, keeps its own
// enum of what it implements. They must be the same.
func TestNamesMatchConfig(t *testing.T) {
	var kinds []string
	for k := KindInvalid + 1; k < kindCount; k++ {
		kinds = append(kinds, k.String())
	}
	if !slices.Equal(kinds, config.Schedulers) {
		t.Errorf("sched kinds %v, config.Schedulers %v", kinds, config.Schedulers)
	}
	flags := map[string]string{}
	for _, n := range flagNames {
		flags[n.name] = n.name[:2] // sh-port: "sh", mh-fallback: "mh"
	}
	if !maps.Equal(flags, config.SchedulerFlags) {
		t.Errorf("sched flags %v, config.SchedulerFlags %v", flags, config.SchedulerFlags)
	}
}
