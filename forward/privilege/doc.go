// Package privilege handles the process's privileges: DropCapabilities re-executes uvs with
// only the capabilities the data plane needs (CAP_NET_RAW, CAP_NET_ADMIN), and InNetNS tells
// netlink users whether they must enter a namespace (which needs CAP_SYS_ADMIN) or are in it.
//
// It must not grant anything: it only drops capabilities and reports the namespace.
package privilege
