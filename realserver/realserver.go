package realserver

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/uvs-project/uvs/config"
)

// ParseMethod parses the forwarding method a real server can be prepared for, "dr" or "tun",
// as the --method flag spells it. The method is config's Forward: a NAT real server needs
// nothing here but its route back through the director.
func ParseMethod(s string) (config.Forward, error) {
	f, err := config.ParseForward(s)
	if err != nil || (f != config.DR && f != config.TUN) {
		return 0, fmt.Errorf("realserver: method %q: want dr or tun", s)
	}
	return f, nil
}

// Decap selects how TUN traffic is decapsulated.
type Decap uint8

// Decapsulation choices.
const (
	DecapInvalid Decap = iota
	DecapAuto          // the kernel's ipip device if the kernel has one, else user space
	DecapKernel        // the kernel's ipip device, or fail
	DecapUser          // user space through a TUN device
)

// String returns the choice as the --decap flag spells it.
func (d Decap) String() string {
	switch d {
	case DecapAuto:
		return "auto"
	case DecapKernel:
		return "kernel"
	case DecapUser:
		return "user"
	}
	return "invalid"
}

// ParseDecap parses "auto", "kernel" or "user".
func ParseDecap(s string) (Decap, error) {
	switch s {
	case "auto", "":
		return DecapAuto, nil
	case "kernel":
		return DecapKernel, nil
	case "user":
		return DecapUser, nil
	}
	return DecapInvalid, fmt.Errorf("realserver: decap %q: want auto, kernel or user", s)
}

// DefaultTUNName is the name of the TUN device of the user-space decapsulator. The doctor
// recognises a running decapsulator by it.
const DefaultTUNName = "uvs-tun0"

// ipipOverhead is the outer IPv4 header of IPIP (RFC 2003).
const ipipOverhead = 20

// ErrUnsupported reports a platform without the needed kernel interfaces.
var ErrUnsupported = errors.New("realserver: needs linux")

// Config says what to prepare. The zero value of each optional field means its default.
type Config struct {
	VIPs   []netip.Addr   // required, IPv4
	Method config.Forward // required: config.DR or config.TUN
	Decap  Decap          // TUN only; default DecapAuto
	// TUNName is the user-space decapsulator's device; default DefaultTUNName.
	TUNName string
	// StatePath is where Up records its changes for a later Down; default
	// /run/uvs/realserver-<network namespace inode>.json, one per network namespace.
	StatePath string
	// Out receives one line per change ("uvs realserver: ..."); nil discards them.
	Out    io.Writer
	Logger *slog.Logger // nil discards
}

func (c *Config) withDefaults() (Config, error) {
	d := *c
	if d.Decap == DecapInvalid {
		d.Decap = DecapAuto
	}
	if d.TUNName == "" {
		d.TUNName = DefaultTUNName
	}
	if d.Out == nil {
		d.Out = io.Discard
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if len(d.VIPs) == 0 {
		return d, errors.New("realserver: no VIP given")
	}
	for _, v := range d.VIPs {
		if !v.IsValid() || v.Is4In6() || v.Zone() != "" {
			return d, fmt.Errorf("realserver: VIP %s: want a plain IPv4 or IPv6 address", v)
		}
	}
	if d.Method != config.DR && d.Method != config.TUN {
		return d, errors.New("realserver: method must be dr or tun")
	}
	if len(d.TUNName) > 15 {
		return d, fmt.Errorf("realserver: device name %q longer than 15 bytes", d.TUNName)
	}
	return d, nil
}

// Problem is one thing the doctor found wrong, with the command that fixes it.
type Problem struct {
	What string
	Fix  string
}

// String gives the problem as one line.
func (p Problem) String() string {
	if p.Fix == "" {
		return p.What
	}
	return p.What + "; fix: " + p.Fix
}

// ParseVIPs parses a comma-separated list of IPv4 addresses.
func ParseVIPs(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil || a.Zone() != "" || a.Is4In6() {
			return nil, fmt.Errorf("realserver: VIP %q: not an IPv4 or IPv6 address", f)
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, errors.New("realserver: --vip ADDR[,ADDR...] is required")
	}
	return out, nil
}
