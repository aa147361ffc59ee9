//go:build linux

package bench

import "github.com/uvs-project/uvs/forward/afxdp"

func init() { afxdpProbe = afxdp.Probe }
