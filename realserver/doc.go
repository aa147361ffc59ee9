// Package realserver prepares the host it runs on as an LVS real server, undoes that, and
// diagnoses it. No other package owns the real-server side: the director (package forward)
// only sends to real servers, and the namespace lab (package bench) prepares its own nodes.
//
// For direct routing (DR) a real server must accept packets addressed to the VIP without
// announcing it: the VIP goes on lo as a /32, arp_ignore=1 keeps the host from answering ARP
// for it on other interfaces, and arp_announce=2 keeps it from using the VIP as the source of
// its own ARP requests (an IPv6 VIP goes on lo as a /128 without DAD; Linux answers neighbour
// solicitations only for addresses on the receiving device). For tunnelling (TUN) it must also
// decapsulate IPIP (RFC 2003): through the kernel's ipip device when the kernel has one,
// otherwise in user space, reading protocol-4 packets from a raw socket and writing the inner
// packets into a TUN device; 6in4, 6in6 and 4in6, which this kernel has no device for, are
// always decapsulated in user space the same way.
//
// Every change is recorded, printed and undone in reverse order, and kept in a state file so
// that `uvs realserver --down` can undo a run that has exited. The package must not touch
// anything it did not change, and the user-space decapsulator must not allocate per packet.
package realserver
