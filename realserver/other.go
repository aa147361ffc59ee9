//go:build !linux

package realserver

import "context"

// Host is a prepared real server. Linux only.
type Host struct{}

// Up prepares the host. Linux only.
func Up(Config) (*Host, error) { return nil, ErrUnsupported }

// Run decapsulates until ctx ends. Linux only.
func (h *Host) Run(context.Context) error { return ErrUnsupported }

// Down undoes Up. Linux only.
func (h *Host) Down() error { return ErrUnsupported }

// Foreground reports whether the host needs Run. Linux only.
func (h *Host) Foreground() bool { return false }

// DownState undoes a recorded run. Linux only.
func DownState(Config) error { return ErrUnsupported }

// Check diagnoses the host. Linux only.
func Check(Config) ([]Problem, []string, error) { return nil, nil, ErrUnsupported }
