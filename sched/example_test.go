package sched_test

import (
	"fmt"
	"sync/atomic"

	"github.com/uvs-project/uvs/sched"
)

// The control plane builds a Table and publishes it; each worker loads it
// once per batch and picks with its own WorkerState.
func ExampleBuild() {
	spec := sched.Spec{Kind: sched.KindWRR, Reals: []sched.RealSpec{
		{Addr: [4]byte{10, 0, 0, 1}, Port: 80, Weight: 4},
		{Addr: [4]byte{10, 0, 0, 2}, Port: 80, Weight: 3},
		{Addr: [4]byte{10, 0, 0, 3}, Port: 80, Weight: 2},
	}}
	tab, err := sched.Build(spec)
	if err != nil {
		panic(err)
	}
	var current atomic.Pointer[sched.Table]
	current.Store(tab)

	loads := make([]sched.Load, len(spec.Reals)) // kept across rebuilds
	ws := sched.NewWorkerState(1)
	t := current.Load()
	for range 9 {
		i := t.Pick(&sched.Flow{}, loads, ws, 0)
		loads[i].Add(1, 0, &spec.Reals[i]) // connection established
		fmt.Print(string(rune('A'+i)), " ")
	}
	fmt.Println()
	// Output: A A B A B C A B C
}
