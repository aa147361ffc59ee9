package sched

import (
	"encoding/binary"
	"testing"
)

// fuzzInput decodes fuzz bytes into a Spec, loads and flows.
type fuzzInput struct {
	b []byte
}

func (in *fuzzInput) byte() byte {
	if len(in.b) == 0 {
		return 0
	}
	c := in.b[0]
	in.b = in.b[1:]
	return c
}

func (in *fuzzInput) u16() uint16 { return uint16(in.byte())<<8 | uint16(in.byte()) }

func (in *fuzzInput) spec() Spec {
	s := Spec{Kind: Kind(in.byte() % 16), Flags: Flags(in.byte())}
	s.MHTableSize = []uint32{0, 7, 251, 1021, 4093, 8, 65537, 65536}[in.byte()%8]
	n := int(in.byte() % 40)
	for i := range n {
		r := RealSpec{
			Addr:   [4]byte{10, in.byte() % 4, 0, byte(i)},
			Port:   in.u16() % 4,
			Weight: int32(int16(in.u16())),
			Upper:  uint32(in.byte() % 8),
			Lower:  uint32(in.byte() % 8),
		}
		s.Reals = append(s.Reals, r)
	}
	s.Seed = uint64(in.u16())
	return s
}

var fuzzWS = NewWorkerState(1)

func FuzzBuild(f *testing.F) {
	f.Add([]byte{byte(KindWRR), 0, 0, 3, 0, 0, 0, 0, 4, 0, 0, 1, 0, 0, 3, 0, 0, 2, 0, 0, 0, 0})
	f.Add([]byte{byte(KindMH), byte(FlagMHFallback), 2, 5, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{byte(KindSH), byte(FlagSHPort | FlagSHFallback), 0, 9, 0xff, 0xff, 0x7f, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &fuzzInput{data}
		spec := in.spec()
		tab, err := Build(spec)
		if err != nil {
			return
		}
		if tab.Len() != len(spec.Reals) || tab.Kind() != spec.Kind {
			t.Fatalf("table has %d reals of %v", tab.Len(), tab.Kind())
		}
		for _, b := range tab.buckets {
			if int(b) >= len(spec.Reals) || spec.Reals[b].Weight == 0 && spec.Kind == KindMH {
				t.Fatalf("bucket holds real %d", b)
			}
		}
		for _, s := range tab.seq {
			if int(s) >= len(spec.Reals) || (spec.Kind == KindWRR && spec.Reals[s].Weight == 0) {
				t.Fatalf("sequence holds real %d", s)
			}
		}
	})
}

func FuzzPick(f *testing.F) {
	f.Add([]byte{byte(KindLBLCR), 0, 0, 4, 0, 1, 0, 2, 0, 0, 0, 1, 0, 3, 0, 0}, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{byte(KindTwoS), 0, 0, 3, 0, 0, 0, 5, 1, 1}, []byte{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9})
	f.Add([]byte{byte(KindMH), byte(FlagMHFallback | FlagMHPort), 2, 3, 0, 0, 0, 1}, []byte{0xff, 0, 0xff, 0})
	f.Fuzz(func(t *testing.T, specBytes, ops []byte) {
		in := &fuzzInput{specBytes}
		spec := in.spec()
		tab, err := Build(spec)
		if err != nil {
			return
		}
		loads := make([]Load, len(spec.Reals))
		now := int64(0)
		for len(ops) >= 4 {
			op := binary.BigEndian.Uint32(ops)
			ops = ops[4:]
			if len(loads) > 0 {
				i := int(op>>8) % len(loads)
				d := int32(int8(op>>16)) % 4
				loads[i].Add(d, int32(int8(op>>24))%4, &spec.Reals[i])
			}
			now += int64(op&0xff) * 60e9
			fl := Flow{Client: [4]byte{byte(op), byte(op >> 8), 1, 2}, ClientPort: uint16(op >> 16),
				VIP: [4]byte{10, 1, 0, byte(op >> 24 & 3)}, Port: 80, Proto: byte(op >> 4)}
			got := tab.Pick(&fl, loads, fuzzWS, now)
			if got < -1 || got >= len(spec.Reals) {
				t.Fatalf("Pick = %d with %d reals", got, len(spec.Reals))
			}
			if got >= 0 && (spec.Reals[got].Weight == 0 || loads[got].Overloaded()) {
				t.Fatalf("Pick = %d: weight %d overloaded %v", got, spec.Reals[got].Weight, loads[got].Overloaded())
			}
		}
	})
}
