package engine

import (
	"encoding/binary"
	"math/bits"

	"github.com/uvs-project/uvs/conntrack"
)

// classifier6 is the classifier for IPv6 addresses: the same questions and the same
// open addressing, over keys too wide for a uint64 (a 128-bit address and the kind, protocol
// and port). It is separate so that IPv4 packets keep their one-word probe; an IPv6 packet
// pays two more word compares per probe.
type classifier6 struct {
	slots []cls6Slot
	shift uint8
	port0 bool
}

type cls6Key struct {
	hi, lo uint64 // the address, big-endian halves
	meta   uint64 // kind<<56 | proto<<48 | port<<32; never 0 (kind starts at 1)
}

type cls6Slot struct {
	key cls6Key
	svc *Service
}

func cls6KeyOf(kind uint8, addr *[16]byte, proto uint8, port uint16) cls6Key {
	return cls6Key{
		hi:   binary.BigEndian.Uint64(addr[:8]),
		lo:   binary.BigEndian.Uint64(addr[8:]),
		meta: uint64(kind)<<56 | uint64(proto)<<48 | uint64(port)<<32,
	}
}

func newClassifier6(n int) classifier6 {
	b := bits.Len(uint(2*n)) + 1
	return classifier6{slots: make([]cls6Slot, 1<<b), shift: uint8(64 - b)}
}

func (c *classifier6) home(k *cls6Key) uint64 {
	return ((k.hi ^ bits.RotateLeft64(k.lo, 29) ^ k.meta) * 0x9e3779b97f4a7c15) >> c.shift
}

func (c *classifier6) add(k cls6Key, svc *Service) {
	m := uint64(len(c.slots) - 1)
	for i := c.home(&k); ; i = (i + 1) & m {
		switch c.slots[i].key {
		case cls6Key{}:
			c.slots[i] = cls6Slot{key: k, svc: svc}
			return
		case k:
			return
		}
	}
}

func (c *classifier6) find(k cls6Key) *cls6Slot {
	if len(c.slots) == 0 {
		return nil
	}
	m := uint64(len(c.slots) - 1)
	for i := c.home(&k); ; i = (i + 1) & m {
		s := &c.slots[i]
		if s.key == k {
			return s
		}
		if s.key.meta == 0 {
			return nil
		}
	}
}

func (c *classifier6) service(addr *[16]byte, proto uint8, port uint16) *Service {
	if s := c.find(cls6KeyOf(clsService, addr, proto, port)); s != nil {
		return s.svc
	}
	if c.port0 && port != 0 {
		if s := c.find(cls6KeyOf(clsService, addr, proto, 0)); s != nil {
			return s.svc
		}
	}
	return nil
}

func (c *classifier6) isVIP(addr *[16]byte) bool {
	return c.find(cls6KeyOf(clsVIP, addr, 0, 0)) != nil
}

func (c *classifier6) isNATAddr(addr *[16]byte) bool {
	return c.find(cls6KeyOf(clsNATAddr, addr, 0, 0)) != nil
}

func (c *classifier6) isNATReply(addr *[16]byte, port uint16, proto uint8) bool {
	return c.find(cls6KeyOf(clsNATReal, addr, proto, port)) != nil ||
		c.find(cls6KeyOf(clsNATReal, addr, proto, 0)) != nil
}

// buildClassifiers fills the snapshot's two classifiers from its maps: IPv4-mapped keys go
// to the IPv4 one, the others to classifier6.
func (s *Snapshot) buildClassifiers() {
	n4, n6 := 0, 0
	count := func(a *[16]byte) {
		if conntrack.Is4(a) {
			n4++
		} else {
			n6++
		}
	}
	for k := range s.services {
		count(&k.addr)
	}
	for v := range s.vips {
		count(&v)
	}
	for k := range s.natReal {
		count(&k.addr)
	}
	for a := range s.natAddr {
		count(&a)
	}
	c := newClassifier(n4)
	c6 := newClassifier6(n6)
	add := func(kind uint8, a [16]byte, proto uint8, port uint16, svc *Service) {
		if conntrack.Is4(&a) {
			c.add(clsKey(kind, [4]byte(a[12:]), proto, port), svc)
			if kind == clsService {
				c.port0 = c.port0 || port == 0
			}
			return
		}
		c6.add(cls6KeyOf(kind, &a, proto, port), svc)
		if kind == clsService {
			c6.port0 = c6.port0 || port == 0
		}
	}
	for k, svc := range s.services {
		add(clsService, k.addr, k.proto, k.port, svc)
	}
	for v := range s.vips {
		add(clsVIP, v, 0, 0, nil)
	}
	for k := range s.natReal {
		add(clsNATReal, k.addr, k.proto, k.port, nil)
	}
	for a := range s.natAddr {
		add(clsNATAddr, a, 0, 0, nil)
	}
	s.cls, s.cls6, s.has6 = c, c6, n6 > 0
}
