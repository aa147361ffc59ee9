package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
)

// StateDir is where `uvs lab up` records the labs it built, one
// <prefix>.json per lab, and keeps their logs under <prefix>/.
const StateDir = "/run/uvs/lab"

// ErrNoLab reports that no lab with the prefix is recorded.
var ErrNoLab = errors.New("bench: no lab is up with this prefix")

// LabState is what `uvs lab up` records so that `lab down`, `lab status`,
// `lab exec` and `uvs bench` find the lab again from another process.
type LabState struct {
	Prefix     string       `json:"prefix"`
	Config     string       `json:"config"` // Absolute path of the file the lab was built from.
	UVS        string       `json:"uvs"`    // Binary that runs the director and the servers.
	SwitchNS   string       `json:"switch_ns"`
	Namespaces []string     `json:"namespaces"` // In creation order.
	Nodes      []StateNode  `json:"nodes"`
	VIPs       []netip.Addr `json:"vips"`
	Procs      []StateProc  `json:"processes"`
	LogDir     string       `json:"log_dir"`
}

// StateNode is one node of a recorded lab.
type StateNode struct {
	Name   string   `json:"name"`
	Role   string   `json:"role"` // client, director, router, real
	NS     string   `json:"ns"`
	Ifaces []Iface  `json:"ifaces"`
	VIPs   []string `json:"vips,omitempty"`
	Method string   `json:"forward,omitempty"` // Real servers: dr, tun or nat.
}

// StateProc is a background process of a recorded lab.
type StateProc struct {
	Role  string   `json:"role"` // director, serve, realserver
	Node  string   `json:"node"`
	PID   int      `json:"pid"`
	Start uint64   `json:"start"` // Start time in clock ticks since boot (/proc/PID/stat field 22), so a reused PID is never taken for it.
	Args  []string `json:"args"`
	Log   string   `json:"log"`
}

// MarshalJSON writes an interface as {"name", "prefix"}, with "prefix6" in a dual-stack lab.
func (i Iface) MarshalJSON() ([]byte, error) {
	v := struct {
		Name    string `json:"name"`
		Prefix  string `json:"prefix"`
		Prefix6 string `json:"prefix6,omitempty"`
	}{Name: i.Name, Prefix: i.Prefix.String()}
	if i.Prefix6.IsValid() {
		v.Prefix6 = i.Prefix6.String()
	}
	return json.Marshal(v)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (i *Iface) UnmarshalJSON(b []byte) error {
	var v struct {
		Name    string `json:"name"`
		Prefix  string `json:"prefix"`
		Prefix6 string `json:"prefix6"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	p, err := netip.ParsePrefix(v.Prefix)
	if err != nil {
		return err
	}
	i.Name, i.Prefix, i.Prefix6 = v.Name, p, netip.Prefix{}
	if v.Prefix6 != "" {
		if i.Prefix6, err = netip.ParsePrefix(v.Prefix6); err != nil {
			return err
		}
	}
	return nil
}

func statePath(prefix string) string { return filepath.Join(StateDir, prefix+".json") }

// ReadState returns the recorded lab with prefix, or an error wrapping ErrNoLab.
func ReadState(prefix string) (*LabState, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(statePath(prefix))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s (no %s)", ErrNoLab, prefix, statePath(prefix))
	}
	if err != nil {
		return nil, fmt.Errorf("bench: read lab state: %w", err)
	}
	var s LabState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("bench: lab state %s: %w", statePath(prefix), err)
	}
	return &s, nil
}

func (s *LabState) write() error {
	if err := os.MkdirAll(StateDir, 0o755); err != nil {
		return fmt.Errorf("bench: lab state: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: lab state: %w", err)
	}
	tmp := statePath(s.Prefix) + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: lab state: %w", err)
	}
	if err := os.Rename(tmp, statePath(s.Prefix)); err != nil {
		return fmt.Errorf("bench: lab state: %w", err)
	}
	return nil
}

// Node returns the recorded node called name.
func (s *LabState) Node(name string) (*Node, bool) {
	for _, n := range s.Nodes {
		if n.Name == name {
			nd := &Node{Name: n.Name, NS: n.NS, Ifaces: n.Ifaces}
			if len(n.Ifaces) > 0 {
				nd.Addr = n.Ifaces[0].Prefix.Addr()
				if p6 := n.Ifaces[0].Prefix6; p6.IsValid() {
					nd.Addr6 = p6.Addr()
				}
			}
			return nd, true
		}
	}
	return nil, false
}

// NodesByRole returns the recorded nodes with role, in order.
func (s *LabState) NodesByRole(role string) []*Node {
	var out []*Node
	for _, n := range s.Nodes {
		if n.Role == role {
			nd, _ := s.Node(n.Name)
			out = append(out, nd)
		}
	}
	return out
}
