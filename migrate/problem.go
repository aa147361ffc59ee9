package migrate

import (
	"strconv"
	"strings"
)

// Problem is one fault in the input, or one setting that was not carried
// over (a Note).
type Problem struct {
	File string // Name given to the importer, or the included file's path.
	Line int    // 1-based; 0 if unknown.
	Msg  string // What is wrong, lowercase, without the location.
}

// String formats p as "FILE:LINE: message", leaving out the parts that are
// unknown.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(p.Line))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error is the error returned for input that cannot be converted. It holds
// every problem found, in input order.
type Error struct {
	Problems []Problem
}

// Error returns one line per problem, "FILE:LINE: message".
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Result is a converted configuration.
type Result struct {
	TOML  []byte    // A uvs configuration that config.Parse accepts.
	Notes []Problem // Settings not carried over; each is also a comment in TOML.
}
