package engine

import "github.com/uvs-project/uvs/config"

// Service policy decided at snapshot build time: what happens to the connections of a real
// server that failed (deadPolicy), and whether a service is up by its quorum (quorumState).
// Below quorum, Registry.service quiesces the service's reals and makes its sorry server,
// if any, the only real with a weight.

// deadPolicy is what happens to the connections of a failed real server: the service's
// dead_real, or by default expire for UDP and keep for TCP. IPVS has only the global
// expire_nodest_conn sysctl for this.
func deadPolicy(cs *config.Service) config.DeadRealPolicy {
	switch {
	case cs.DeadReal != 0:
		return cs.DeadReal
	case cs.Protocol == config.UDP:
		return config.DeadRealExpire
	}
	return config.DeadRealKeep
}

// quorumState is keepalived's quorum with hysteresis (check/ipwrapper.c): a service goes
// up when the live weight reaches quorum+hysteresis, and down when it drops below
// quorum-hysteresis or to 0. A service seen for the first time is up iff live >= quorum.
func quorumState(known, up bool, live, quorum, hysteresis int) bool {
	switch {
	case !known:
		return live > 0 && live >= quorum
	case !up && live >= quorum+hysteresis:
		return true
	case up && (live == 0 || live < quorum-hysteresis):
		return false
	}
	return up
}
