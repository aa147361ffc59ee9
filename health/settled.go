package health

// Settled reports whether every running check has probed its real server at least once and
// reported the result. Until then a real is up only by default; the BGP announcer waits
// for this before it announces a VIP, so that a director that has just started does not
// attract traffic for real servers it has not seen yet.
func (c *Checker) Settled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ck := range c.checks {
		if !ck.ran.Load() {
			return false
		}
	}
	return true
}
