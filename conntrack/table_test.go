package conntrack

import (
	"testing"
	"unsafe"
)

func ckey(i int) Key {
	return Key{Client: Map4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), CPort: uint16(1024 + i%60000), VIP: Map4([4]byte{192, 0, 2, 1}), VPort: 80, Proto: ProtoTCP}
}

func TestEntrySize(t *testing.T) {
	if got := unsafe.Sizeof(Entry{}); got != EntryBytes {
		t.Fatalf("Entry is %d bytes, EntryBytes says %d", got, EntryBytes)
	}
	tab, _ := New(Config{Capacity: 1000})
	if per := tab.MemoryBytes() / tab.Capacity(); per > 96 {
		// 80-byte entries (16-byte addresses for both families) and two 4-byte index
		// words at load 1/2.
		t.Fatalf("%d bytes per entry, budget 96", per)
	}
}

func TestFullTableRefusesAndKeepsEstablished(t *testing.T) {
	const n = 8
	tab, _ := New(Config{Capacity: n, Seed: 9})
	var es []*Entry
	for i := 0; i < n; i++ {
		e := Entry{Key: ckey(i)}
		p, ok := tab.Insert(&e, 0)
		if !ok {
			t.Fatalf("insert %d refused", i)
		}
		tab.TCP(p, DirInput, TCPSyn, 0)
		if i%2 == 0 {
			tab.TCP(p, DirInput, TCPAck, 0)
			es = append(es, p)
		}
	}
	extra := Entry{Key: ckey(100)}
	if p, ok := tab.Insert(&extra, 1); ok || p != nil || !tab.Full() {
		t.Fatal("full table accepted a new entry")
	}
	for i := 0; i < n; i++ {
		k := ckey(i)
		if tab.Lookup(&k) == nil {
			t.Fatalf("entry %d gone after a refused insert", i)
		}
	}
	// Past SYN_RECV's 60 s but within ESTABLISHED's 900 s: the sweep frees
	// the embryonic entries only.
	out := make([]Entry, n)
	now := uint32(61_000)
	if got := tab.Expire(now, n, out); got != n/2 {
		t.Fatalf("expired %d, want %d", got, n/2)
	}
	for _, e := range out[:n/2] {
		if e.State != StateSynRecv {
			t.Fatalf("expired a %s entry", e.State)
		}
	}
	for _, p := range es {
		if tab.Lookup(&p.Key) != p || p.State != StateEstablished {
			t.Fatal("established entry lost")
		}
	}
	if _, ok := tab.Insert(&extra, now); !ok {
		t.Fatal("insert refused after the sweep made room")
	}
}

func TestNATReplyLookup(t *testing.T) {
	tab, _ := New(Config{Capacity: 4, Seed: 5})
	nat := Entry{Key: ckey(1), Real: Map4([4]byte{10, 9, 0, 1}), RPort: 8080, Flags: FlagNAT}
	dr := Entry{Key: ckey(2), Real: Map4([4]byte{10, 9, 0, 1}), RPort: 8080}
	pn, _ := tab.Insert(&nat, 0)
	tab.Insert(&dr, 0)
	if got := tab.LookupReply(ProtoTCP, nat.Key.Client, nat.Key.CPort, nat.Real, nat.RPort); got != pn {
		t.Fatal("NAT reply not found")
	}
	if tab.LookupReply(ProtoTCP, dr.Key.Client, dr.Key.CPort, dr.Real, dr.RPort) != nil {
		t.Fatal("DR entry found by reply lookup")
	}
	tab.Delete(pn)
	if tab.LookupReply(ProtoTCP, nat.Key.Client, nat.Key.CPort, nat.Real, nat.RPort) != nil {
		t.Fatal("deleted entry still in the reply index")
	}
}

func TestOnePacket(t *testing.T) {
	tab, _ := New(Config{Capacity: 2})
	e := Entry{Key: Key{Proto: ProtoUDP, CPort: 53}, Flags: FlagOnePacket}
	tab.Insert(&e, 10)
	if tab.Lookup(&e.Key) != nil {
		t.Fatal("one-packet entry visible")
	}
	out := make([]Entry, 2)
	if tab.Expire(10, 2, out) != 1 || tab.Len() != 0 {
		t.Fatal("one-packet entry not reaped by the next sweep")
	}
}

func TestTemplates(t *testing.T) {
	const persist = 300_000
	tab, _ := New(Config{Capacity: 8, Seed: 3})
	ck := ckey(7)
	tk := TemplateKey(&ck, 24, 80)
	if tk.Client != Map4([4]byte{10, 0, 0, 0}) || tk.CPort != 0 || tk.VPort != 80 || tk.VIP != ck.VIP || tk.Proto != ProtoTCP {
		t.Fatalf("template key %+v", tk)
	}
	if k0 := TemplateKey(&ck, 32, 0); k0.Client != ck.Client || k0.VPort != 0 {
		t.Fatalf("port-0 template key %+v", k0)
	}
	out := make([]Entry, 8)

	t.Run("kept alive while it controls", func(t *testing.T) {
		tpl, ok := tab.InsertTemplate(&Entry{Key: tk, Real: Map4([4]byte{10, 9, 0, 1}), RPort: 80}, persist, 0)
		if !ok || tpl.State != StateNone || tpl.Expires != persist || tab.LookupTemplate(&tk) != tpl || tab.Lookup(&tk) != nil {
			t.Fatal("template insert or lookup")
		}
		c, _ := tab.Insert(&Entry{Key: ck, Real: tpl.Real, RPort: tpl.RPort}, 0)
		tab.Bind(c, tpl)
		if tpl.Controls() != 1 || tab.Template(c) != tpl {
			t.Fatal("bind")
		}
		tab.TCP(c, DirInput, TCPSyn, 0)
		tab.TCP(c, DirInput, TCPAck, 1000) // ESTABLISHED until 901 s
		if tpl.Flags&FlagAssured == 0 {
			t.Fatal("template not assured by an established connection")
		}
		if n := tab.Expire(persist, 8, out); n != 0 || tpl.Expires != persist+expireLater {
			t.Fatalf("expired %d; template deadline %d", n, tpl.Expires)
		}
		// The connection expires normally; the template outlives it by its
		// own (restarted) timer, then goes.
		now := uint32(901_000)
		if n := tab.Expire(now, 8, out); n != 1 || out[0].Key != ck {
			t.Fatalf("expired %d", n)
		}
		if tpl.Controls() != 0 || tab.LookupTemplate(&tk) != tpl {
			t.Fatal("template dropped with its connection")
		}
		if n := tab.Expire(tpl.Expires, 8, out); n != 1 || out[0].Flags&FlagTemplate == 0 {
			t.Fatalf("template not expired: %d", n)
		}
		if tab.Len() != 0 {
			t.Fatal("leftovers")
		}
	})

	t.Run("unassured template dropped with a reset connection", func(t *testing.T) {
		tpl, _ := tab.InsertTemplate(&Entry{Key: tk}, persist, 0)
		c, _ := tab.Insert(&Entry{Key: ck}, 0)
		tab.Bind(c, tpl)
		tab.TCP(c, DirInput, TCPSyn, 0)
		tab.Delete(c) // e.g. reused by a new SYN
		if n := tab.Expire(1, 8, out); n != 1 || out[0].Flags&FlagTemplate == 0 || tab.Len() != 0 {
			t.Fatalf("unassured template kept: %d", n)
		}
	})

	t.Run("deleted template unlinked until its connections go", func(t *testing.T) {
		tpl, _ := tab.InsertTemplate(&Entry{Key: tk}, persist, 0)
		c, _ := tab.Insert(&Entry{Key: ck}, 0)
		tab.Bind(c, tpl)
		tab.Delete(tpl) // e.g. its real server went away
		if tab.LookupTemplate(&tk) != nil || tab.Template(c) != nil || tab.Len() != 1 {
			t.Fatal("deleted template still visible")
		}
		tpl2, ok := tab.InsertTemplate(&Entry{Key: tk}, persist, 0)
		if !ok {
			t.Fatal("could not replace the template")
		}
		tab.Delete(c)
		if tpl2.Controls() != 0 || tab.LookupTemplate(&tk) != tpl2 {
			t.Fatal("old connection released the new template")
		}
		tab.Delete(tpl2)
		if tab.Len() != 0 || tab.used != 0 {
			t.Fatalf("len %d used %d", tab.Len(), tab.used)
		}
	})
}

func TestAllocs(t *testing.T) {
	tab, _ := New(Config{Capacity: 1 << 12, Seed: 1})
	for i := 0; i < 1<<11; i++ {
		e := Entry{Key: ckey(i), Flags: FlagNAT, Real: Map4([4]byte{10, 9, 0, 1}), RPort: 80}
		tab.Insert(&e, 0)
	}
	out := make([]Entry, 64)
	k := ckey(5)
	p := tab.Lookup(&k)
	now := uint32(0)
	i := 1 << 11
	bkeys := make([]Key, 40)
	for j := range bkeys {
		bkeys[j] = ckey(j * 3)
	}
	bout := make([]*Entry, len(bkeys))
	hs := make([]uint64, len(bkeys))
	var spot Spot
	var gone Entry
	tests := []struct {
		name string
		fn   func()
	}{
		{"Lookup", func() { tab.Lookup(&k) }},
		{"LookupBatch", func() { tab.LookupBatch(bkeys, bout) }},
		{"LookupReply", func() { tab.LookupReply(ProtoTCP, k.Client, k.CPort, Map4([4]byte{10, 9, 0, 1}), 80) }},
		{"InsertDelete", func() {
			e := Entry{Key: ckey(i), Flags: FlagNAT}
			n, _ := tab.Insert(&e, now)
			tab.Delete(n)
			i++
		}},
		{"PrefetchLookupSpotAdmit", func() {
			for j := range bkeys {
				hs[j] = tab.Hash(&bkeys[j])
			}
			tab.Prefetch(hs)
			e := Entry{Key: ckey(i)}
			if tab.LookupSpotHash(&e.Key, tab.Hash(&e.Key), &spot) == nil {
				n, _, _ := tab.Admit(&e, now, &spot, &gone)
				tab.Delete(n)
			}
			i++
		}},
		{"TCP", func() { tab.TCP(p, DirInput, TCPAck, now) }},
		{"Touch", func() { tab.Touch(p, now) }},
		{"Expire", func() { now += 100; tab.Expire(now, 256, out) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a := testing.AllocsPerRun(1000, tt.fn); a != 0 {
				t.Fatalf("%v allocations per call", a)
			}
		})
	}
}

func TestUDPTouchAndAssure(t *testing.T) {
	tab, _ := New(Config{Capacity: 4, Timeouts: Timeouts{UDP: 1000}})
	uk := Key{Client: Map4([4]byte{10, 0, 0, 1}), CPort: 5000, VIP: Map4([4]byte{192, 0, 2, 1}), VPort: 53, Proto: ProtoUDP}
	tk := TemplateKey(&uk, 32, 53)
	tk.Proto = ProtoUDP
	tpl, _ := tab.InsertTemplate(&Entry{Key: tk}, 5000, 0)
	c, ok := tab.Insert(&Entry{Key: uk, Flags: FlagNAT}, 0)
	if !ok || c.State != StateUDP || c.Expires != 1000 || IsActive(c.State) {
		t.Fatalf("udp insert %+v", c)
	}
	tab.Bind(c, tpl)
	tab.Touch(c, 900)
	if c.Expires != 1900 || tpl.Flags&FlagAssured != 0 {
		t.Fatal("input touch")
	}
	tab.TouchOutput(c, 1000)
	if c.Expires != 2000 || tpl.Flags&FlagAssured == 0 {
		t.Fatal("reply did not assure the template")
	}
	if again, ok := tab.Insert(&Entry{Key: uk}, 1500); ok || again != c {
		t.Fatal("duplicate live key inserted")
	}
	// After expiry, the same key can be inserted beside the old entry, and
	// the sweep still reports the old one.
	tab.Tick(2000)
	if tab.Lookup(&uk) != nil {
		t.Fatal("expired entry visible")
	}
	c2, ok := tab.Insert(&Entry{Key: uk}, 2000)
	if !ok || c2 == c || tab.Lookup(&uk) != c2 {
		t.Fatal("re-insert after expiry")
	}
	out := make([]Entry, 4)
	if n := tab.Expire(2000, 8, out); n != 1 || out[0].Expires != 2000 {
		t.Fatalf("expired %d", n)
	}
	if tab.Lookup(&uk) != c2 || tpl.Controls() != 0 {
		t.Fatal("sweep hit the new entry or kept the control")
	}
	seen := 0
	tab.Range(func(*Entry) bool { seen++; return false })
	if seen != 1 {
		t.Fatal("Range did not stop")
	}
}

// TestFloodedTableAdmitsAtOnce is issue 13 bug 2: after a flood, a table full
// of expired entries must admit new connections at once. The worker's
// pattern per RX block: find-or-insert each SYN, then one Expire of
// expireBatch (64) slots. Before Admit reclaimed expired slots, the first
// block of 1,000 admitted 0 and every later one 64.
func TestFloodedTableAdmitsAtOnce(t *testing.T) {
	const n, block, budget = 8192, 1000, 64
	tab, _ := New(Config{Capacity: n, Seed: 3})
	for i := 0; i < n; i++ {
		e := Entry{Key: ckey(i), Service: 1}
		p, ok := tab.Insert(&e, 0)
		if !ok {
			t.Fatalf("insert %d refused", i)
		}
		tab.TCP(p, DirInput, TCPSyn, 0) // SYN_RECV: 60 s
	}
	if !tab.Full() {
		t.Fatal("table not full after the flood")
	}
	now := uint32(61_000) // every flood entry has expired, none was swept
	out := make([]Entry, budget)
	released := 0
	for b := 0; b < 5; b++ {
		admitted := 0
		for j := 0; j < block; j++ {
			k := ckey(100_000 + b*block + j)
			var s Spot
			if tab.LookupSpot(&k, &s) != nil {
				t.Fatal("new key found")
			}
			var gone Entry
			e := Entry{Key: k, Service: 2}
			p, inserted, reclaimed := tab.Admit(&e, now, &s, &gone)
			if reclaimed {
				if gone.Service != 1 || gone.State != StateSynRecv {
					t.Fatalf("reclaimed %+v, want an expired flood entry", gone)
				}
				released++
			}
			if inserted {
				admitted++
				tab.TCP(p, DirInput, TCPSyn, now)
			}
		}
		for _, g := range out[:tab.Expire(now, budget, out)] {
			if g.Service != 1 {
				t.Fatalf("swept a new connection: %+v", g)
			}
			released++
		}
		if admitted != block {
			t.Fatalf("block %d admitted %d of %d SYNs", b, admitted, block)
		}
		now += 1
	}
	if want := tab.Len() - 5*block; n-released != want {
		t.Fatalf("%d flood entries released, %d still indexed: %d lost", released, want, n-released-want)
	}
	// Fill the rest (reclaiming the last expired flood entries): a table of
	// live entries then refuses, after a bounded scan.
	for i := 0; ; i++ {
		e := Entry{Key: ckey(200_000 + i)}
		var gone Entry
		p, ok, _ := tab.Admit(&e, now, nil, &gone)
		if !ok {
			break
		}
		tab.TCP(p, DirInput, TCPSyn, now)
	}
	var gone Entry
	k := ckey(300_000)
	e := Entry{Key: k}
	for i := 0; i < 4; i++ {
		if _, ok, reclaimed := tab.Admit(&e, now, nil, &gone); ok || reclaimed {
			t.Fatal("a table of live entries admitted a new connection")
		}
	}
}

// TestLookupSpotAdmit checks find-or-insert against plain Insert: a fresh
// Spot inserts without probing, a stale one (the index changed) probes again
// and still finds a live duplicate.
func TestLookupSpotAdmit(t *testing.T) {
	tab, _ := New(Config{Capacity: 64, Seed: 1})
	for i := 0; i < 40; i++ {
		k := ckey(i)
		var s Spot
		if tab.LookupSpot(&k, &s) != nil {
			t.Fatal("hit before insert")
		}
		if i%3 == 0 { // another insert makes the Spot stale
			o := Entry{Key: ckey(1000 + i)}
			tab.Insert(&o, 0)
		}
		e := Entry{Key: k}
		p, ok, _ := tab.Admit(&e, 0, &s, nil)
		if !ok || p == nil || tab.Lookup(&k) != p {
			t.Fatalf("key %d: admitted %v, lookup disagrees", i, ok)
		}
		// The same key again, through the same (now used) Spot: found, not duplicated.
		if q, ok, _ := tab.Admit(&e, 0, &s, nil); ok || q != p {
			t.Fatalf("key %d inserted twice", i)
		}
		var s2 Spot
		if tab.LookupSpot(&k, &s2) != p {
			t.Fatalf("key %d: LookupSpot misses", i)
		}
	}
}

// TestPrefetchLookupSpotHash checks that the hashed lookups agree with Lookup
// (Prefetch changes nothing).
func TestPrefetchLookupSpotHash(t *testing.T) {
	tab, _ := New(Config{Capacity: 256, Seed: 11})
	for i := 0; i < 200; i += 2 {
		e := Entry{Key: ckey(i)}
		tab.Insert(&e, 0)
	}
	keys := make([]Key, 100)
	hs := make([]uint64, len(keys))
	for i := range keys {
		keys[i] = ckey(i)
		hs[i] = tab.Hash(&keys[i])
	}
	n := tab.Len()
	tab.Prefetch(hs)
	if tab.Len() != n {
		t.Fatal("Prefetch changed the table")
	}
	for i := range keys {
		var s Spot
		got := tab.LookupSpotHash(&keys[i], hs[i], &s)
		if got != tab.Lookup(&keys[i]) || (got != nil) != (i%2 == 0) {
			t.Fatalf("key %d: LookupSpotHash %v, Lookup %v", i, got, tab.Lookup(&keys[i]))
		}
		if got == nil {
			e := Entry{Key: keys[i]}
			if p, ok, _ := tab.Admit(&e, 0, &s, nil); !ok || tab.Lookup(&keys[i]) != p {
				t.Fatalf("key %d: Admit through a hashed Spot failed", i)
			}
		}
	}
}

func TestRangeFromChunks(t *testing.T) {
	tab, _ := New(Config{Capacity: 100, Seed: 2})
	var ps []*Entry
	for i := 0; i < 90; i++ {
		e := Entry{Key: ckey(i)}
		p, _ := tab.Insert(&e, 0)
		ps = append(ps, p)
	}
	for i := 0; i < 90; i += 3 {
		tab.Delete(ps[i])
	}
	want := map[Key]bool{}
	tab.Range(func(e *Entry) bool { want[e.Key] = true; return true })
	got := map[Key]bool{}
	buf := make([]Entry, 7)
	from, calls := uint32(0), 0
	for {
		n, next, done := tab.RangeFrom(from, buf)
		calls++
		if n > len(buf) || (!done && n != len(buf)) {
			t.Fatalf("chunk of %d (done %v)", n, done)
		}
		for _, e := range buf[:n] {
			if got[e.Key] {
				t.Fatalf("%+v listed twice", e.Key)
			}
			got[e.Key] = true
		}
		from = next
		if done {
			break
		}
	}
	if len(got) != len(want) || len(got) != 60 || calls != (60+6)/7 {
		t.Fatalf("listed %d of %d in %d calls", len(got), len(want), calls)
	}
	if a := testing.AllocsPerRun(100, func() { tab.RangeFrom(0, buf) }); a != 0 {
		t.Fatalf("%v allocations", a)
	}
}

// TestSet4: Set4 makes the key the composite literal with Map4 makes, whatever k held.
func TestSet4(t *testing.T) {
	for _, c := range []struct {
		client, vip  [4]byte
		cport, vport uint16
		proto        uint8
	}{
		{[4]byte{198, 18, 0, 7}, [4]byte{203, 0, 113, 10}, 40000, 80, 6},
		{[4]byte{255, 255, 255, 255}, [4]byte{0, 0, 0, 0}, 0, 65535, 17},
		{[4]byte{1, 2, 3, 4}, [4]byte{4, 3, 2, 1}, 1, 2, 1},
	} {
		k := Key{Client: [16]byte{0: 0xaa, 15: 0xbb}, VIP: [16]byte{3: 0xcc}, CPort: 9, VPort: 9, Proto: 9}
		k.Set4(c.client, c.vip, c.cport, c.vport, c.proto)
		want := Key{Client: Map4(c.client), VIP: Map4(c.vip), CPort: c.cport, VPort: c.vport, Proto: c.proto}
		if k != want {
			t.Fatalf("Set4 = %+v, want %+v", k, want)
		}
		if !Is4(&k.Client) || !Is4(&k.VIP) {
			t.Fatalf("Set4 key %+v is not IPv4-mapped", k)
		}
	}
}
