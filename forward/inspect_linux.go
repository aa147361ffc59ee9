//go:build linux

package forward

import (
	"time"

	"github.com/uvs-project/uvs/config"
)

// Config returns the configuration the director currently runs.
func (d *Director) Config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// Tick returns the current conntrack tick: milliseconds since the director started, the
// clock of conntrack.Entry.Expires (read int32(e.Expires-Tick()) as milliseconds left).
func (d *Director) Tick() uint32 { return uint32(time.Since(d.epoch) / time.Millisecond) }
