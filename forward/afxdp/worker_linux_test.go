//go:build linux

package afxdp

import (
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/forward/engine"
	"github.com/uvs-project/uvs/forward/packet"
)

// A worker driven by a fake kernel: rings in ordinary memory, and the test plays the kernel's
// part (take fill chunks, write frames, post RX descriptors; consume TX descriptors, post their
// chunks on the completion ring). No socket, no root.

func testRing(size uint32) ring {
	return ring{producer: new(uint32), consumer: new(uint32), flags: new(uint32), mask: size - 1, size: size}
}

func testAddrRing(size uint32) *addrRing {
	return &addrRing{ring: testRing(size), addrs: make([]uint64, size)}
}

func testDescRing(size uint32) *descRing {
	return &descRing{ring: testRing(size), descs: make([]unix.XDPDesc, size)}
}

var (
	testVIP    = [4]byte{198, 18, 1, 100}
	testClient = [4]byte{198, 19, 0, 7}
)

// testWorker returns a worker of a one-worker DR director (VIP:80 to testReal) with one fake
// socket.
func testWorker(t testing.TB) (*Worker, *Socket) {
	t.Helper()
	cfg, err := config.Parse("t.toml", []byte(`[director]
interfaces = ["eth0"]
workers = 1
[[service]]
vip = "198.18.1.100"
port = 80
forward = "dr"
  [[service.real]]
  address = "198.18.1.11"
`))
	if err != nil {
		t.Fatal(err)
	}
	ifc := engine.Iface{Name: "eth0", Index: 1, MAC: testMAC, MTU: 1500}
	egress := func([16]byte) engine.Egress {
		return engine.Egress{TxIf: 0, SrcMAC: testMAC, DstMAC: [6]byte{2, 0, 0, 0, 0, 0x11}, SrcIP: [4]byte{198, 18, 1, 1}, MTU: 1500}
	}
	snap, err := engine.NewRegistry(1).Build(cfg, []engine.Iface{ifc}, egress, 1)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := conntrack.New(conntrack.Config{Capacity: 1 << 16, Timeouts: conntrack.DefaultTimeouts()})
	if err != nil {
		t.Fatal(err)
	}
	var sp atomic.Pointer[engine.Snapshot]
	sp.Store(snap)
	u := &UMEM{mem: make([]byte, 2048*ChunkBytes), chunks: 2048, fd: -1, zc: true}
	w, err := NewWorker(0, engine.NewEngine(0, ct, 256, 256<<10, 1), u, 0, u.chunks, &sp, new(atomic.Bool), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	p := &Pool{fd: -1, fill: testAddrRing(fillRingSize), comp: testAddrRing(compRingSize)}
	s := &Socket{fd: -1, rx: testDescRing(rxRingSize), tx: testDescRing(txRingSize), pool: p}
	w.socks, w.tx = []*Socket{s}, []*Socket{s}
	p.mu.Lock()
	w.refill(p, fillRingSize)
	p.mu.Unlock()
	return w, s
}

// tcpSYN writes a TCP SYN from testClient:sport to testVIP:80 into b and returns its length.
// The TCP checksum is left as a CHECKSUM_PARTIAL sender leaves it when partial is set.
func tcpSYN(b []byte, sport uint16, partial bool) int {
	const n = 14 + 20 + 20
	copy(b[0:6], testMAC[:])
	copy(b[6:12], []byte{2, 0, 0, 0, 0, 7})
	binary.BigEndian.PutUint16(b[12:], packet.EtherTypeIPv4)
	ip := b[14:n]
	clear(ip)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], 40)
	ip[8] = 64
	ip[9] = packet.ProtoTCP
	copy(ip[12:], testClient[:])
	copy(ip[16:], testVIP[:])
	binary.BigEndian.PutUint16(ip[10:], ^packet.Checksum(ip[:20], 0))
	tcp := ip[20:]
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], 80)
	tcp[12] = 5 << 4
	tcp[13] = 0x02
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	seed := packet.PseudoHeaderSum(testClient, testVIP, packet.ProtoTCP, 20)
	if partial {
		binary.BigEndian.PutUint16(tcp[16:], seed)
	} else {
		binary.BigEndian.PutUint16(tcp[16:], ^packet.Checksum(tcp, seed))
	}
	return n
}

// kernelRX plays the kernel receiving n frames: it takes chunks from the fill ring, writes a
// SYN into each after XDP_PACKET_HEADROOM and posts it on the RX ring.
func kernelRX(s *Socket, n int, sport *uint16, partial bool) int {
	f, r := s.pool.fill, s.rx
	done := 0
	for ; done < n; done++ {
		fc, fp := f.loadConsumer(), f.loadProducer()
		rp := r.loadProducer()
		if fc == fp || rp-r.loadConsumer() == r.size {
			break
		}
		addr := f.addrs[fc&f.mask] + unix.XDP_PACKET_HEADROOM
		f.storeConsumer(fc + 1)
		*sport++
		l := tcpSYN(testMem[addr:], *sport, partial)
		r.descs[rp&r.mask] = unix.XDPDesc{Addr: addr, Len: uint32(l)}
		r.storeProducer(rp + 1)
	}
	return done
}

// testMem is the UMEM of the test's worker, which the fake kernel writes and reads.
var testMem []byte

// kernelTX plays the kernel sending what the TX ring holds: it checks each frame and posts its
// chunk on the completion ring.
func kernelTX(t testing.TB, s *Socket) int {
	tx, c := s.tx, s.pool.comp
	cons, prod := tx.loadConsumer(), tx.loadProducer()
	n := 0
	for ; cons != prod; cons++ {
		d := tx.descs[cons&tx.mask]
		frame := testMem[d.Addr : d.Addr+uint64(d.Len)]
		ip := frame[14:]
		if [4]byte(frame[0:4]) != [4]byte{2, 0, 0, 0} || packet.Checksum(ip[:20], 0) != 0xffff ||
			packet.Checksum(ip[20:40], packet.PseudoHeaderSum([4]byte(ip[12:16]), [4]byte(ip[16:20]), packet.ProtoTCP, 20)) != 0xffff {
			t.Fatalf("bad frame sent: % x", frame)
		}
		cp := c.loadProducer()
		c.addrs[cp&c.mask] = d.Addr
		c.storeProducer(cp + 1)
		n++
	}
	tx.storeConsumer(cons)
	return n
}

func TestWorkerForwardsAndRecyclesChunks(t *testing.T) {
	for _, partial := range []bool{false, true} {
		w, s := testWorker(t)
		testMem = w.umem.mem
		var sport uint16 = 1000
		sent := 0
		for round := 0; round < 200; round++ {
			kernelRX(s, rxBatch, &sport, partial)
			for w.batch(s) {
			}
			sent += kernelTX(t, s)
		}
		st := w.eng.Stats()
		if st.Forwarded.Load() != uint64(sent) || sent < 200*rxBatch/2 {
			t.Fatalf("partial=%v: forwarded %d, sent %d", partial, st.Forwarded.Load(), sent)
		}
		// Every chunk is accounted for: free, in the fill ring, or (none) elsewhere.
		w.tend(s.pool)
		f := s.pool.fill
		if inFill := int(f.loadProducer() - f.loadConsumer()); len(w.free)+inFill != w.umem.chunks {
			t.Fatalf("partial=%v: %d free + %d in the fill ring, want %d chunks", partial, len(w.free), inFill, w.umem.chunks)
		}
	}
}

// TestWorkerAllocs fails on any allocation in the AF_XDP worker's path: RX batch, engine,
// TX flush, completion and fill ring upkeep.
func TestWorkerAllocs(t *testing.T) {
	w, s := testWorker(t)
	testMem = w.umem.mem
	var sport uint16 = 1000
	allocs := testing.AllocsPerRun(200, func() {
		kernelRX(s, rxBatch, &sport, true)
		for w.batch(s) {
		}
		kernelTX(t, s)
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per batch of %d frames", allocs, rxBatch)
	}
	if w.eng.Stats().Forwarded.Load() == 0 {
		t.Error("nothing forwarded")
	}
}
