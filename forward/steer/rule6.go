package steer

// SteerRule6 is SteerRule for an IPv6 flow from s:sp to d:dp: the hash the IPv6 rule of the
// fanout program computes, for the control side to pick the worker that owns a connection it
// restores or installs from a sync record.
func SteerRule6(s, d [16]byte, sp, dp uint16, vips []SteerVIP, nat []SteerNAT) uint32 {
	return steerRule6(s, d, sp, dp, true, true, false, vips, nat)
}
