package sched

import (
	"errors"
	"fmt"
	"strings"
)

// Kind names an IPVS scheduler.
type Kind uint8

// Scheduler kinds, named as ipvsadm -s names them.
const (
	KindInvalid Kind = iota
	KindRR           // round robin (ip_vs_rr.c)
	KindWRR          // weighted round robin (ip_vs_wrr.c)
	KindLC           // least connection (ip_vs_lc.c)
	KindWLC          // weighted least connection (ip_vs_wlc.c)
	KindLBLC         // locality-based least connection (ip_vs_lblc.c)
	KindLBLCR        // locality-based least connection with replication (ip_vs_lblcr.c)
	KindDH           // destination hashing (ip_vs_dh.c)
	KindSH           // source hashing (ip_vs_sh.c)
	KindSED          // shortest expected delay (ip_vs_sed.c)
	KindNQ           // never queue (ip_vs_nq.c)
	KindFO           // weighted failover (ip_vs_fo.c)
	KindOVF          // weighted overflow (ip_vs_ovf.c)
	KindMH           // Maglev hashing (ip_vs_mh.c)
	KindTwoS         // power of two choices (ip_vs_twos.c)
	kindCount
)

var kindNames = [kindCount]string{
	KindInvalid: "invalid",
	KindRR:      "rr",
	KindWRR:     "wrr",
	KindLC:      "lc",
	KindWLC:     "wlc",
	KindLBLC:    "lblc",
	KindLBLCR:   "lblcr",
	KindDH:      "dh",
	KindSH:      "sh",
	KindSED:     "sed",
	KindNQ:      "nq",
	KindFO:      "fo",
	KindOVF:     "ovf",
	KindMH:      "mh",
	KindTwoS:    "twos",
}

// ErrUnknownKind is returned by ParseKind for a name that is not a scheduler.
var ErrUnknownKind = errors.New("unknown scheduler")

// ErrUnknownFlag is returned by ParseFlag for a name that is not a scheduler flag.
var ErrUnknownFlag = errors.New("unknown scheduler flag")

// String returns the ipvsadm name of k ("rr", "wrr", ...), or "invalid".
func (k Kind) String() string {
	if k < kindCount {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Valid reports whether k is a scheduler.
func (k Kind) Valid() bool { return k > KindInvalid && k < kindCount }

// ParseKind returns the Kind named s, as ipvsadm -s spells it.
func ParseKind(s string) (Kind, error) {
	for k := KindRR; k < kindCount; k++ {
		if kindNames[k] == s {
			return k, nil
		}
	}
	return KindInvalid, fmt.Errorf("sched: parse %q: %w", s, ErrUnknownKind)
}

// Flags are the IPVS scheduler flags (ipvsadm -b, IP_VS_SVC_F_SCHED*).
type Flags uint8

// Scheduler flags. The zero value means no flags.
const (
	// FlagSHFallback makes sh skip an unavailable real and rehash
	// (IP_VS_SVC_F_SCHED_SH_FALLBACK).
	FlagSHFallback Flags = 1 << iota
	// FlagSHPort makes sh hash the client port as well (IP_VS_SVC_F_SCHED_SH_PORT).
	FlagSHPort
	// FlagMHFallback makes mh skip an unavailable real and rehash
	// (IP_VS_SVC_F_SCHED_MH_FALLBACK).
	FlagMHFallback
	// FlagMHPort makes mh hash the client port as well (IP_VS_SVC_F_SCHED_MH_PORT).
	FlagMHPort
	flagsAll = FlagSHFallback | FlagSHPort | FlagMHFallback | FlagMHPort
)

var flagNames = [...]struct {
	f    Flags
	name string
}{
	{FlagSHFallback, "sh-fallback"},
	{FlagSHPort, "sh-port"},
	{FlagMHFallback, "mh-fallback"},
	{FlagMHPort, "mh-port"},
}

// String returns the flags as ipvsadm -b takes them, comma separated.
func (f Flags) String() string {
	var b strings.Builder
	for _, n := range flagNames {
		if f&n.f != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(n.name)
		}
	}
	if rest := f &^ flagsAll; rest != 0 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "0x%x", uint8(rest))
	}
	return b.String()
}

// ParseFlag parses one flag name ("sh-port") or a comma-separated list of them
// ("sh-fallback,sh-port"), as ipvsadm -b takes them. The empty string is no flags.
func ParseFlag(s string) (Flags, error) {
	var f Flags
	if s == "" {
		return 0, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		found := false
		for _, n := range flagNames {
			if n.name == part {
				f |= n.f
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("sched: parse flag %q: %w", part, ErrUnknownFlag)
		}
	}
	return f, nil
}
