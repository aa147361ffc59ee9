package config

// Schedulers are the IPVS scheduler names uvs accepts, as ipvsadm -s takes them. It is the one
// list of names in the project: migrate and the command line use it, and package sched, which
// implements them (and imports nothing from the project, as config does not import sched),
// has a test that its kinds are exactly these, in this order. Read-only.
var Schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}

// SchedulerFlags maps each scheduler flag (ipvsadm -b) to the scheduler it belongs to; sched
// checks its flags against it the same way. Read-only.
var SchedulerFlags = map[string]string{
	"sh-fallback": "sh",
	"sh-port":     "sh",
	"mh-fallback": "mh",
	"mh-port":     "mh",
}
