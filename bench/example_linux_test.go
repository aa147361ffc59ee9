package bench_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/uvs-project/uvs/bench"
)

// A DR lab with test servers, as an integration test of another package
// would build it (after testenv.RequireRoot(t), from internal/testenv).
func ExampleNewLab() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := bench.NewLab(ctx, bench.LabSpec{Prefix: "uvtexample-", Topology: bench.TopologyDR})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	if _, err := l.StartServers(80, bench.UDPPort); err != nil {
		log.Fatal(err)
	}
	if err := l.PrepareReals("dr"); err != nil {
		log.Fatal(err)
	}
	// Write l.Config("dr", "rr", 80, 80, dir) to a file, then
	// d, err := l.StartDirector(ctx, "./uvs", file, os.Stderr); defer d.Stop().
	body, err := bench.Get(ctx, l.Client.HTTPClient(), "http://"+l.RealAddrs[0].String()+"/")
	fmt.Printf("%s %v", body, err)
}
