package control

import "github.com/uvs-project/uvs/vrrp"

// Status is what `uvs list` shows: the services of the running director with their real
// servers, counters and rates. Field names of the JSON form are pinned by INTERFACE.md;
// fields beyond them are extensions.
type Status struct {
	// ConnTableSize is the connection table capacity (ipvsadm's "size=").
	ConnTableSize int       `json:"conn_table_size"`
	Timeouts      Timeouts  `json:"timeouts"`
	Services      []Service `json:"services"`
	// Drops counts dropped packets by reason, over all workers (shown by --stats --json).
	Drops map[string]uint64 `json:"drops,omitempty"`
	// Director says which data-plane mechanisms run (INTERFACE.md: backend, shield, rx_ring).
	Director *DirectorInfo `json:"director,omitempty"`
	// VRRP lists the VRRP instances (INTERFACE.md: name, interface, state, priority,
	// master, transitions), when any is configured.
	VRRP []vrrp.Status `json:"vrrp,omitempty"`
	// BGP is the embedded speaker's sessions and routes; absent without [bgp].
	BGP *BGPStatus `json:"bgp,omitempty"`
	// Sync is connection synchronization's status (sync.go); omitted without [sync].
	Sync *SyncStatus `json:"sync,omitempty"`
}

// DirectorInfo is the director object of uvs list --json.
type DirectorInfo struct {
	Backend string `json:"backend"`           // "afpacket" or "afxdp"
	Shield  string `json:"shield"`            // "tcx" or "nftables"; "none" with afxdp
	RXRing  string `json:"rx_ring"`           // afpacket: "v2" or "v3"; "none" with afxdp
	TXMode  string `json:"tx_mode,omitempty"` // afpacket: "ring" or "mmsg"
	// XDP describes the afxdp backend's program and sockets (backend.go).
	XDP *XDPStatus `json:"xdp,omitempty"`
}

// Timeouts are the ipvsadm --set timeouts in seconds.
type Timeouts struct {
	TCP    int64 `json:"tcp_s"`
	TCPFin int64 `json:"tcp_fin_s"`
	UDP    int64 `json:"udp_s"`
}

// Service is one virtual service.
type Service struct {
	Name                string   `json:"name"`
	Protocol            string   `json:"protocol"` // "tcp" or "udp"
	VIP                 string   `json:"vip"`
	Port                uint16   `json:"port"`
	Ports               []uint16 `json:"ports,omitempty"` // every port, for a multi-port service
	Scheduler           string   `json:"scheduler"`
	SchedulerFlags      []string `json:"scheduler_flags,omitempty"`
	PersistenceTimeoutS int64    `json:"persistence_timeout_s"`
	PersistenceNetmask  string   `json:"persistence_netmask,omitempty"` // dotted; only when persistent
	OnePacket           bool     `json:"one_packet,omitempty"`
	Stats               Stats    `json:"stats"`
	Rates               Rates    `json:"rates"`
	Reals               []Real   `json:"reals"`
}

// Real is one real server of a service.
type Real struct {
	Address string `json:"address"`
	Port    uint16 `json:"port"`
	Forward string `json:"forward"` // "dr", "tun" or "nat"
	// Weight is the weight in effect (0 while a failed health check quiesces the real);
	// ConfigWeight is the configured one.
	Weight         int32  `json:"weight"`
	ConfigWeight   int32  `json:"config_weight"`
	Healthy        bool   `json:"healthy"`
	HealthReason   string `json:"health_reason,omitempty"`
	ActiveConns    int64  `json:"active_conns"`
	InactiveConns  int64  `json:"inactive_conns"`
	PersistConns   int64  `json:"persist_conns"` // templates pointing at the real (--persistent-conn)
	UpperThreshold uint32 `json:"upper_threshold"`
	LowerThreshold uint32 `json:"lower_threshold"`
	Overloaded     bool   `json:"overloaded,omitempty"`
	Stats          Stats  `json:"stats"`
	Rates          Rates  `json:"rates"`
}

// Stats are IPVS counters (struct ip_vs_stats_user).
type Stats struct {
	Conns      uint64 `json:"conns"`
	InPackets  uint64 `json:"in_packets"`
	InBytes    uint64 `json:"in_bytes"`
	OutPackets uint64 `json:"out_packets"`
	OutBytes   uint64 `json:"out_bytes"`
}

// Rates are the IPVS rate estimates, per second (ipvsadm --rate).
type Rates struct {
	CPS    uint64 `json:"cps"`
	InPPS  uint64 `json:"in_pps"`
	OutPPS uint64 `json:"out_pps"`
	InBPS  uint64 `json:"in_bps"`
	OutBPS uint64 `json:"out_bps"`
}

// Connection is one connection entry or persistence template (ipvsadm -Lnc).
type Connection struct {
	Protocol string `json:"protocol"` // "tcp" or "udp"
	Client   string `json:"client"`   // IP:port; port 0 for a template
	VIP      string `json:"vip"`      // IP:port
	Real     string `json:"real"`     // IP:port
	State    string `json:"state"`
	ExpiresS int64  `json:"expires_s"`
	Template bool   `json:"template,omitempty"`
	Synced   bool   `json:"synced,omitempty"` // installed from a sync record (IP_VS_CONN_F_SYNC)
}

// Edit is one ipvsadm-style change to the running director.
type Edit struct {
	// Command is one of "add-service" (-A), "edit-service" (-E), "delete-service" (-D),
	// "add-real" (-a), "edit-real" (-e), "delete-real" (-d), "zero" (-Z).
	Command string     `json:"command"`
	Service ServiceRef `json:"service"`
	// Service options (-s, -p, -M); nil leaves them as they are on edit.
	Scheduler          *string `json:"scheduler,omitempty"`
	PersistenceTimeout *int64  `json:"persistence_timeout_s,omitempty"`
	PersistenceNetmask *string `json:"persistence_netmask,omitempty"`
	Name               *string `json:"name,omitempty"`
	// Real server (-r ADDR[:PORT]) and its options (-g/-i/-m, -w, -x, -y).
	Real           string  `json:"real,omitempty"`
	Forward        *string `json:"forward,omitempty"`
	Weight         *int    `json:"weight,omitempty"`
	UpperThreshold *int    `json:"upper_threshold,omitempty"`
	LowerThreshold *int    `json:"lower_threshold,omitempty"`
}

// TraceQuery names one flow: the packet a client would send.
type TraceQuery struct {
	Protocol string `json:"protocol"`
	Client   string `json:"client"` // IP:port
	VIP      string `json:"vip"`    // IP:port
}

// TraceResult explains how the director treats the flow.
type TraceResult struct {
	Service    *ServiceRef      `json:"service,omitempty"`
	Scheduler  string           `json:"scheduler,omitempty"`
	Connection *Connection      `json:"connection,omitempty"`
	Template   *Connection      `json:"template,omitempty"`
	Chosen     string           `json:"chosen,omitempty"` // IP:port of the real a new connection would get
	Exact      bool             `json:"exact"`            // false when the choice depends on a worker's state
	Reasons    []string         `json:"reasons"`
	Candidates []TraceCandidate `json:"candidates,omitempty"`
}

// TraceCandidate is one real server as the scheduler sees it.
type TraceCandidate struct {
	Real          string `json:"real"`
	Weight        int32  `json:"weight"`
	ActiveConns   int64  `json:"active_conns"`
	InactiveConns int64  `json:"inactive_conns"`
	Healthy       bool   `json:"healthy"`
	Overloaded    bool   `json:"overloaded"`
	Available     bool   `json:"available"`
}
