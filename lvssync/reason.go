package lvssync

// Reason is why a message or a record was dropped. The zero value,
// ReasonNone, means it was not.
type Reason uint8

// Drop reasons. The names (String) are the `reason` label of
// uvs_sync_dropped_total and the keys of `sync.dropped` in `uvs list --json`.
const (
	ReasonNone            Reason = iota
	ReasonShort                  // shorter than a header
	ReasonSize                   // header size differs from the datagram length
	ReasonSyncID                 // another syncid
	ReasonTruncated              // a record runs past the end of the message
	ReasonRecordVersion          // a record's ver_size has a version other than 0
	ReasonType                   // unknown record type
	ReasonOption                 // a malformed optional parameter
	ReasonMandatoryOption        // an unknown mandatory optional parameter (record skipped)
	ReasonProtocol               // a protocol IPVS (and uvs) does not sync
	ReasonState                  // a state number out of range for the protocol
	ReasonUnkeyed                // a keyed receiver got a message without an auth block
	ReasonAuth                   // bad MAC, unknown algorithm, or an auth block an unkeyed receiver cannot check
	ReasonReplay                 // a sequence number already seen or too old
	ReasonNotPeer                // an unkeyed message from an address that is not a peer
	ReasonRate                   // over the rate cap of synced entries
	ReasonCap                    // over the cap of synced entries in the table
	ReasonUnknownService         // no such virtual service here
	ReasonUnknownReal            // no such real server in the service here
	ReasonTableFull              // the connection table is full
	ReasonLocalActive            // a local active entry wins over the record
	ReasonNotBackup              // records arrived while not a backup
	ReasonRingFull               // master: a worker's ring was full
	ReasonSendError              // master: the socket refused a message
	ReasonBulkDenied             // a bulk request from a sender that may not ask
	ReasonNoTable                // a backup without an Installer: nothing to install into

	NumReasons
)

var reasonNames = [NumReasons]string{
	ReasonNone:            "none",
	ReasonShort:           "short",
	ReasonSize:            "size",
	ReasonSyncID:          "syncid",
	ReasonTruncated:       "truncated",
	ReasonRecordVersion:   "record_version",
	ReasonType:            "record_type",
	ReasonOption:          "option",
	ReasonMandatoryOption: "mandatory_option",
	ReasonProtocol:        "protocol",
	ReasonState:           "state",
	ReasonUnkeyed:         "unkeyed",
	ReasonAuth:            "auth",
	ReasonReplay:          "replay",
	ReasonNotPeer:         "not_peer",
	ReasonRate:            "rate",
	ReasonCap:             "cap",
	ReasonUnknownService:  "unknown_service",
	ReasonUnknownReal:     "unknown_real",
	ReasonTableFull:       "table_full",
	ReasonLocalActive:     "local_active",
	ReasonNotBackup:       "not_backup",
	ReasonRingFull:        "ring_full",
	ReasonSendError:       "send_error",
	ReasonBulkDenied:      "bulk_denied",
	ReasonNoTable:         "no_table",
}

// String returns the reason's label.
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}
