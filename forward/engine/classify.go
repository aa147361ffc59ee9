package engine

import (
	"encoding/binary"
	"math/bits"
)

// classifier answers, in one open-addressing probe per question, what a packet's addresses
// mean to the director: a service on (VIP, protocol, port), a VIP at all, a NAT real's reply
// port, a NAT real's address. It is built with the snapshot from the same sets as its maps
// and replaces two or three Go map lookups per packet. Keys are packed into a uint64 (never
// 0, so 0 marks an empty slot); the table is at most half full, so a miss ends within a
// cluster whose length the configuration decides, not the packet.
type classifier struct {
	slots []clsSlot
	shift uint8 // 64 - log2(len(slots))
	port0 bool  // some service listens on port 0 (every port)
}

type clsSlot struct {
	key uint64
	svc *Service // the service of a clsService key; nil for the others
}

// Kinds of classifier keys.
const (
	clsService uint8 = 1 + iota // (VIP, protocol, port): a service; port 0 = every port
	clsVIP                      // (VIP, 0, 0): a VIP
	clsNATReal                  // (real, protocol, port): a NAT real's service port; 0 = every port
	clsNATAddr                  // (real, 0, 0): the address of a NAT real
)

func clsKey(kind uint8, addr [4]byte, proto uint8, port uint16) uint64 {
	return uint64(kind)<<56 | uint64(proto)<<48 | uint64(port)<<32 | uint64(binary.BigEndian.Uint32(addr[:]))
}

// newClassifier sizes a table for n keys at load at most 1/2.
func newClassifier(n int) classifier {
	b := bits.Len(uint(2*n)) + 1
	return classifier{slots: make([]clsSlot, 1<<b), shift: uint8(64 - b)}
}

func (c *classifier) home(k uint64) uint64 { return (k * 0x9e3779b97f4a7c15) >> c.shift }

func (c *classifier) add(k uint64, svc *Service) {
	m := uint64(len(c.slots) - 1)
	for i := c.home(k); ; i = (i + 1) & m {
		switch c.slots[i].key {
		case 0:
			c.slots[i] = clsSlot{key: k, svc: svc}
			return
		case k:
			return
		}
	}
}

// find returns the slot holding k, or nil.
func (c *classifier) find(k uint64) *clsSlot {
	if len(c.slots) == 0 {
		return nil
	}
	m := uint64(len(c.slots) - 1)
	for i := c.home(k); ; i = (i + 1) & m {
		s := &c.slots[i]
		if s.key == k {
			return s
		}
		if s.key == 0 {
			return nil
		}
	}
}

// service returns the service for a packet to addr:port, the exact port first, then a
// port-0 service of that VIP.
func (c *classifier) service(addr [4]byte, proto uint8, port uint16) *Service {
	if s := c.find(clsKey(clsService, addr, proto, port)); s != nil {
		return s.svc
	}
	if c.port0 && port != 0 {
		if s := c.find(clsKey(clsService, addr, proto, 0)); s != nil {
			return s.svc
		}
	}
	return nil
}

func (c *classifier) isVIP(addr [4]byte) bool {
	return c.find(clsKey(clsVIP, addr, 0, 0)) != nil
}

func (c *classifier) isNATAddr(addr [4]byte) bool {
	return c.find(clsKey(clsNATAddr, addr, 0, 0)) != nil
}

// isNATReply reports whether a packet from addr:port comes from a NAT real server's service
// port (port 0 stands for a real that keeps the client's port on every port).
func (c *classifier) isNATReply(addr [4]byte, port uint16, proto uint8) bool {
	return c.find(clsKey(clsNATReal, addr, proto, port)) != nil ||
		c.find(clsKey(clsNATReal, addr, proto, 0)) != nil
}
