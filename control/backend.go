package control

import "github.com/uvs-project/uvs/forward"

// XDPStatus describes the afxdp backend's program and sockets: the xdp member of the
// director object of `uvs list --json`.
type XDPStatus struct {
	Attached   bool           `json:"attached"` // every interface's program is attached
	XSKMode    string         `json:"xsk_mode"` // copy or zero-copy
	Interfaces []XDPInterface `json:"interfaces"`
}

// XDPInterface is one interface of the afxdp backend.
type XDPInterface struct {
	Name   string `json:"name"`
	Mode   string `json:"mode"`    // native or generic XDP
	ProgID uint32 `json:"prog_id"` // bpftool prog show id N
	Queues int    `json:"queues"`
}

// backendReporter is implemented by a director that can describe its backend
// (*forward.Director); test doubles need not.
type backendReporter interface {
	Backend() forward.BackendInfo
}

// xdpStatus returns the xdp member of the director object, or nil when the backend is not
// afxdp.
func (o *Operator) xdpStatus() *XDPStatus {
	br, ok := o.d.(backendReporter)
	if !ok {
		return nil
	}
	bi := br.Backend()
	if bi.Backend != "afxdp" {
		return nil
	}
	x := &XDPStatus{Attached: bi.XDPAttached, XSKMode: bi.XSKMode, Interfaces: []XDPInterface{}}
	for _, i := range bi.Interfaces {
		x.Interfaces = append(x.Interfaces, XDPInterface{Name: i.Name, Mode: i.Mode, ProgID: i.ProgID, Queues: i.Queues})
	}
	return x
}
