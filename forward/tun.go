package forward

// tunnel forwards a request to a TUN real server by IPIP encapsulation.
// Not implemented yet: counted as method_unavailable.
func (e *engine) tunnel(buf, frame []byte, real *Real) {
	_, _, _ = buf, frame, real
	e.edrop(DropMethod)
}
