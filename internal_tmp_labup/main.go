package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/uvs-project/uvs/bench"
)

func main() {
	topo := bench.TopologyDR
	method := "dr"
	if len(os.Args) > 1 && os.Args[1] == "nat" {
		topo = bench.TopologyNAT
		method = "nat"
	}
	ctx := context.Background()
	l, err := bench.NewLab(ctx, bench.LabSpec{Prefix: "dbg-", Topology: topo})
	if err != nil {
		panic(err)
	}
	defer l.Close()
	if err := l.PrepareReals(method); err != nil {
		panic(err)
	}
	s, err := l.StartServers(80, 9000)
	if err != nil {
		panic(err)
	}
	defer s.Close()
	os.MkdirAll("/tmp/dbg", 0o755)
	port := 80
	os.WriteFile("/tmp/dbg/uvs.toml", []byte(l.Config(method, "rr", port, port, "/tmp/dbg")), 0o644)
	fmt.Println("lab up; config /tmp/dbg/uvs.toml; director ns", l.Director.NS, "client ns", l.Client.NS)
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt)
	<-c
}
