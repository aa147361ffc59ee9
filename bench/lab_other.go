//go:build !linux

package bench

import (
	"context"
	"io"
	"time"

	"github.com/uvs-project/uvs/config"
)

// NewLab returns ErrUnsupported: labs need Linux network namespaces.
func NewLab(ctx context.Context, spec LabSpec) (*Lab, error) {
	if _, err := spec.withDefaults(); err != nil {
		return nil, err
	}
	return nil, ErrUnsupported
}

// Close does nothing outside Linux.
func (l *Lab) Close() error { return nil }

// CleanupPrefix does nothing outside Linux.
func CleanupPrefix(prefix string) error { return checkPrefix(prefix) }

// Do returns ErrUnsupported.
func (n *Node) Do(fn func() error) error { return ErrUnsupported }

// PrepareReals returns ErrUnsupported.
func (l *Lab) PrepareReals(method string) error { return ErrUnsupported }

// StartDirector returns ErrUnsupported.
func (l *Lab) StartDirector(ctx context.Context, uvsBinary, configPath string, stderr io.Writer, extra ...string) (*Director, error) {
	return nil, ErrUnsupported
}

// CleanupStale does nothing outside Linux.
func CleanupStale(base string) error { return checkPrefix(base) }

// HasCommand reports false outside Linux.
func HasCommand(uvs, name string) bool { return false }

func labUp(ctx context.Context, cfg *config.Config, cfgPath, uvs string, out io.Writer, readyTimeout time.Duration) (*LabState, error) {
	return nil, ErrUnsupported
}

// LabUp returns ErrUnsupported.
func LabUp(ctx context.Context, cfg *config.Config, cfgPath, uvs string, out io.Writer) (*LabState, error) {
	return nil, ErrUnsupported
}

// LabDown returns ErrUnsupported.
func LabDown(prefix string) error { return ErrUnsupported }

// Down returns ErrUnsupported.
func (s *LabState) Down() error { return ErrUnsupported }

// Status returns ErrUnsupported.
func (s *LabState) Status(ctx context.Context, w io.Writer) error { return ErrUnsupported }

// Exec returns ErrUnsupported.
func (s *LabState) Exec(ctx context.Context, node string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	return -1, ErrUnsupported
}

// Serve returns ErrUnsupported.
func Serve(ctx context.Context, name string, tcpPorts, udpPorts []int) error { return ErrUnsupported }

// ServeDualStack returns ErrUnsupported.
func ServeDualStack(ctx context.Context, name string, tcpPorts, udpPorts []int) error {
	return ErrUnsupported
}

// BenchOptions configure RunBench.
type BenchOptions struct {
	Config     *config.Config
	ConfigPath string
	UVS        string
	Out        io.Writer
	Progress   io.Writer
	PerfDir    string
}

// RunBench returns ErrUnsupported.
func RunBench(ctx context.Context, o BenchOptions) (*Results, error) { return nil, ErrUnsupported }

// RunSoak returns ErrUnsupported: the soak needs a Linux namespace lab.
func RunSoak(ctx context.Context, uvsBinary string, cfg SoakConfig) (*SoakReport, error) {
	return nil, ErrUnsupported
}
