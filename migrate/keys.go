package migrate

// targetKeys lists uvs keys that the importers can produce but that the
// config package may not accept yet. A key set to false is written as a
// "# uvs import:" comment instead of a setting; once config.Parse accepts
// it, flip it to true here and the importers emit it. TestTargetKeys fails
// when a key marked false starts being accepted, as a reminder.
//
// The shapes written, as the health-check work defines them:
//
//	[[service]] sorry_server = "IP:PORT"  keepalived sorry_server ("IP" on multi-port and all-ports services)
//	[[service]] quorum = N                 keepalived quorum: least total weight of live reals
//	[[service]] hysteresis = N             keepalived hysteresis, 0..quorum-1
//	[[service]] on_failure = "quiesce"     keepalived inhibit_on_failure on every real; "remove" on none
//	[service.check] digest = "hex"         keepalived HTTP_GET/SSL_GET digest: MD5 of the body, lowercase
//	[service.check] warmup = "Ns"          keepalived checker warmup
var targetKeys = map[string]bool{
	"sorry_server": true,
	"quorum":       true,
	"hysteresis":   true,
	"on_failure":   true,
	"digest":       true,
	"warmup":       true,
	"payload":      true,
	"expect":       true,
}
