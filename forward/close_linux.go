//go:build linux

package forward

// Close undoes what NewDirector set up (sockets, rings, the shield, XDP programs, group
// memberships) for a director that will not Run: a stop that came during start-up. Run
// undoes them itself when it returns; Close after Run, or twice, does nothing more.
func (d *Director) Close() { d.close() }
