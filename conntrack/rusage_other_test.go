//go:build !unix

package conntrack

func cpuNanos() int64 { return 0 }
