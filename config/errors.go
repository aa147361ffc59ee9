package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration file.
type Problem struct {
	File string // Name given to Parse or path given to Load.
	Line int    // Line of the offending key, else of its table header; 0 = unknown.
	Key  string // Key path, e.g. "service[1].real[0].weight"; "" for file-level problems.
	Msg  string // What is wrong, lowercase, without the location.
}

// String formats p as "FILE:LINE: key.path: message", leaving out the parts
// that are unknown.
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
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error is the error returned by Load and Parse. It holds every problem
// found, not just the first, ordered by line.
type Error struct {
	Problems []Problem

	err error // Underlying error, e.g. from reading the file; may be nil.
}

// Error returns one line per problem, "FILE:LINE: key.path: message".
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the underlying error, such as an *fs.PathError when the
// file could not be read, or nil.
func (e *Error) Unwrap() error { return e.err }

// sortProblems orders problems by line, keeping the order in which they were
// found for problems on the same line.
func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
}
