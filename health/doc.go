// Package health is uvs's health checker: it probes real servers as [service.check] and
// [service.real.check] say (tcp, http, https, udp, exec, none), runs keepalived's rise/fall
// state machine, ramps recovered reals up during slow start, and reports every change
// through Config.Update, which package daemon points at forward.Director.SetHealth.
//
// It owns its goroutines (one per distinct check), its sockets and the processes of exec
// checks. It is off the data path: it never touches rings, snapshots or connection tables,
// and imports nothing from uvs but config. One check is shared by every service that names
// the same real address, port and check, so a real is probed once per interval however many
// services use it; first runs are spread over the interval so that a thousand reals do not
// fire at once.
//
// It must not log per probe: it logs each transition once, with the failure that caused it.
package health
