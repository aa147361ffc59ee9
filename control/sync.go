package control

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/uvs-project/uvs/lvssync"
)

// SyncSource is implemented by a Director (and metrics source) that runs connection
// synchronization: SyncStats reports its counters, and false when [sync] is off.
type SyncSource interface {
	SyncStats() (lvssync.Stats, bool)
}

// SyncStatus is the `sync` object of `uvs list --json`. Field names are pinned by
// INTERFACE.md (role, syncid, sent, received, dropped, last_rx_s); the rest are extensions.
type SyncStatus struct {
	Role     string            `json:"role"`   // master, backup or both: the role in effect
	SyncID   int               `json:"syncid"` // 0 = a backup accepts any
	Sent     uint64            `json:"sent"`   // messages
	Received uint64            `json:"received"`
	Dropped  map[string]uint64 `json:"dropped"` // messages or records, by reason
	// LastRxS is the age of the last message received, in seconds; -1 when none yet.
	LastRxS         float64 `json:"last_rx_s"`
	RecordsSent     uint64  `json:"records_sent"`
	RecordsReceived uint64  `json:"records_received"`
	Installed       uint64  `json:"installed"`
	BulkRequests    uint64  `json:"bulk_requests"` // bulk copies served
	BulkRecords     uint64  `json:"bulk_records"`  // records sent in bulk copies
}

// syncStatus converts the engine's counters; d need not run sync.
func syncStatus(d any, now time.Time) *SyncStatus {
	src, ok := d.(SyncSource)
	if !ok {
		return nil
	}
	s, on := src.SyncStats()
	if !on {
		return nil
	}
	st := &SyncStatus{
		Role: s.Role.String(), SyncID: int(s.SyncID), Sent: s.Sent, Received: s.Received,
		Dropped: map[string]uint64{}, LastRxS: -1,
		RecordsSent: s.RecordsSent, RecordsReceived: s.RecordsReceived, Installed: s.Installed,
		BulkRequests: s.BulkRequests, BulkRecords: s.BulkRecords,
	}
	for r, n := range s.Dropped {
		if n > 0 {
			st.Dropped[lvssync.Reason(r).String()] = n
		}
	}
	if !s.LastRx.IsZero() {
		st.LastRxS = math.Round(now.Sub(s.LastRx).Seconds()*1000) / 1000
	}
	return st
}

// formatSync writes the text form of the sync status, after the ipvsadm listing.
func formatSync(b *strings.Builder, s *SyncStatus) {
	fmt.Fprintf(b, "Sync: role %s syncid %d sent %d received %d", s.Role, s.SyncID, s.Sent, s.Received)
	if s.LastRxS >= 0 {
		fmt.Fprintf(b, " last_rx %.1fs", s.LastRxS)
	}
	var total uint64
	for _, n := range s.Dropped {
		total += n
	}
	fmt.Fprintf(b, " dropped %d\n", total)
}

// Metric descriptions of connection sync.
var (
	syncMessagesDesc = prometheus.NewDesc("uvs_sync_messages_total",
		"IPVS sync protocol messages sent (direction out) and received (direction in).", []string{"direction"}, nil)
	syncDroppedDesc = prometheus.NewDesc("uvs_sync_dropped_total",
		"Sync messages or records dropped, by reason.", []string{"reason"}, nil)
	syncRecordsDesc = prometheus.NewDesc("uvs_sync_records_total",
		"Connection records sent (out), received (in) and installed.", []string{"direction"}, nil)
	syncRoleDesc = prometheus.NewDesc("uvs_sync_role",
		"Sync role in effect: 1 master, 2 backup, 3 both.", nil, nil)
)

func describeSync(ch chan<- *prometheus.Desc) {
	ch <- syncMessagesDesc
	ch <- syncDroppedDesc
	ch <- syncRecordsDesc
	ch <- syncRoleDesc
}

// collectSync emits the sync series when src runs sync.
func collectSync(src any, ch chan<- prometheus.Metric) {
	ss, ok := src.(SyncSource)
	if !ok {
		return
	}
	s, on := ss.SyncStats()
	if !on {
		return
	}
	c := prometheus.CounterValue
	ch <- prometheus.MustNewConstMetric(syncMessagesDesc, c, float64(s.Sent), "out")
	ch <- prometheus.MustNewConstMetric(syncMessagesDesc, c, float64(s.Received), "in")
	ch <- prometheus.MustNewConstMetric(syncRecordsDesc, c, float64(s.RecordsSent), "out")
	ch <- prometheus.MustNewConstMetric(syncRecordsDesc, c, float64(s.RecordsReceived), "in")
	ch <- prometheus.MustNewConstMetric(syncRecordsDesc, c, float64(s.Installed), "installed")
	for r := lvssync.Reason(1); r < lvssync.NumReasons; r++ {
		ch <- prometheus.MustNewConstMetric(syncDroppedDesc, c, float64(s.Dropped[r]), r.String())
	}
	ch <- prometheus.MustNewConstMetric(syncRoleDesc, prometheus.GaugeValue, float64(s.Role))
}
