package migrate

import (
	"strings"

	"github.com/uvs-project/uvs/config"
)

// Problem is one fault in the input, or one setting that was not carried
// over (a Note).
type Problem struct {
	File string // Name given to the importer, or the included file's path.
	Line int    // 1-based; 0 if unknown.
	Msg  string // What is wrong, lowercase, without the location.
}

// String formats p as "FILE:LINE: message", leaving out the parts that are
// unknown: config's format without a key path.
func (p Problem) String() string {
	return config.Problem{File: p.File, Line: p.Line, Msg: p.Msg}.String()
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
