//go:build !linux

package vrrp

import (
	"errors"

	"github.com/uvs-project/uvs/config"
)

// Speaker runs VRRP instances; only on Linux.
type Speaker struct{}

// New fails: the speaker needs Linux raw sockets.
func New(*config.Config, Options) (*Speaker, error) {
	return nil, errors.New("vrrp: only supported on Linux")
}

// Start does nothing.
func (s *Speaker) Start() {}

// Stop does nothing.
func (s *Speaker) Stop() {}

// Reload does nothing.
func (s *Speaker) Reload(*config.Config) error { return nil }

// Status returns nothing.
func (s *Speaker) Status() []Status { return nil }
