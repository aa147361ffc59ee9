package forward

// BackendInfo is what `uvs list --json` reports of the backend in its director object.
type BackendInfo struct {
	Backend     string     // afpacket or afxdp
	XDPAttached bool       // afxdp: every interface's program is attached (through a bpf_link)
	XSKMode     string     // afxdp: copy or zero-copy
	Interfaces  []XDPIface // afxdp: per interface
}

// XDPIface is one interface of the afxdp backend.
type XDPIface struct {
	Name   string
	Mode   string // native or generic XDP
	ProgID uint32 // the kernel's id of the attached program (bpftool prog show id N)
	Queues int    // RX queues, one AF_XDP socket per worker on each
}
