//go:build !linux

package bench

import (
	"context"
	"io"
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
func (l *Lab) StartDirector(ctx context.Context, uvsBinary, configPath string, stderr io.Writer) (*Director, error) {
	return nil, ErrUnsupported
}

// CleanupStale does nothing outside Linux.
func CleanupStale(base string) error { return checkPrefix(base) }
