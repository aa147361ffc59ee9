package control

import (
	"reflect"
	"slices"
	"testing"

	"github.com/uvs-project/uvs/config"
)

// TestConfigTOMLKnowsEveryField fails when config gains a field that ConfigTOML does not
// write: a runtime edit renders the running config with ConfigTOML, so a field it forgot
// would be silently reset by every uvs edit. Add the key to save.go, then here.
func TestConfigTOMLKnowsEveryField(t *testing.T) {
	known := map[reflect.Type][]string{
		// Lab and Bench describe the namespace lab and the benchmark profile (uvs lab, uvs
		// bench), not the director: the running director ignores them, so the running state
		// that save prints and edits render leaves them out.
		reflect.TypeOf(config.Config{}): {"Source", "Director", "Conntrack", "Timeouts", "Services", "Lab", "Bench", "BGP"},
		// An inline BGP password is never written (a comment says one is set); Edit carries the
		// running [bgp] over to the edited config instead.
		reflect.TypeOf(config.BGP{}):       {"Present", "ASN", "RouterID", "NextHop", "DrainTime", "Passive", "MaxPrefixes", "Neighbors", "Line"},
		reflect.TypeOf(config.Neighbor{}):  {"Address", "ASN", "HoldTime", "Password", "PasswordFile", "BFD", "Line"},
		reflect.TypeOf(config.Director{}):  {"Interfaces", "Workers", "ControlSocket", "MetricsListen", "TXMode", "AnswerPing"},
		reflect.TypeOf(config.Conntrack{}): {"MaxConnections", "SloppyTCP"},
		reflect.TypeOf(config.Timeouts{}):  {"TCP", "TCPFin", "UDP"},
		reflect.TypeOf(config.Service{}): {"Name", "VIP", "Protocol", "Port", "Ports", "Scheduler", "SchedulerFlags",
			"MHTableSize", "PersistenceTimeout", "PersistenceBits", "Forward", "OnePacket", "MSSClamp", "TunnelSource",
			"DeadReal", "ExpireQuiescentTemplate", "OnFailure", "SlowStart", "SorryServer", "Quorum", "Hysteresis",
			"Check", "Reals", "Line"},
		reflect.TypeOf(config.Real{}): {"Address", "Port", "Weight", "Forward", "UpperThreshold", "LowerThreshold", "Check", "Line"},
		reflect.TypeOf(config.Check{}): {"Type", "Interval", "Timeout", "Rise", "Fall", "Path", "Host", "ExpectStatus",
			"Port", "Command", "Payload", "Expect", "Digest", "TLSVerify", "Warmup", "Via"},
	}
	for typ, names := range known {
		for i := 0; i < typ.NumField(); i++ {
			if f := typ.Field(i); f.IsExported() && !slices.Contains(names, f.Name) {
				t.Errorf("config.%s.%s is not written by ConfigTOML (control/save.go)", typ.Name(), f.Name)
			}
		}
	}
}
