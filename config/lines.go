package config

import (
	"strconv"
	"strings"
)

// lineIndex maps key paths, written as in Problem.Key ("service[1].real[0].weight"),
// to the 1-based line where the key, or the header of the table, appears.
//
// BurntSushi/toml v1.6.0 records key positions but does not export them, and
// it keys them without array indices, so "service.real.weight" is one entry
// for every [[service.real]]. The index is therefore built by a small scan of
// the source. It is only run on input that toml.Decode accepted, but it must
// not panic or loop on any input (FuzzLineIndex).
type lineIndex map[string]int

// line returns the line of key, or of its nearest ancestor that has one, or 0.
func (ix lineIndex) line(key string) int {
	for key != "" {
		if n, ok := ix[key]; ok {
			return n
		}
		key = parentKey(key)
	}
	return 0
}

// parentKey strips the last ".name" or "[i]" from a key path. Quoted parts
// may contain dots and brackets.
func parentKey(key string) string {
	cut, inQuote := 0, false
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c == '\\' && inQuote:
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && (c == '.' || c == '['):
			cut = i
		}
	}
	return key[:cut]
}

// joinKey appends the TOML key part name to path, quoting it when it is not
// a bare key.
func joinKey(path, name string) string {
	if !isBare(name) {
		name = strconv.Quote(name)
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

func isBare(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isBareChar(s[i]) {
			return false
		}
	}
	return true
}

func isBareChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func indexKey(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// lineScanner walks TOML source just far enough to see keys, table headers
// and where values end.
type lineScanner struct {
	src    string
	pos    int
	line   int
	ix     lineIndex
	arrays map[string]int // Resolved path of each [[array]] -> elements seen so far.
}

func indexLines(src []byte) lineIndex {
	s := &lineScanner{src: string(src), line: 1, ix: lineIndex{}, arrays: map[string]int{}}
	table := ""
	for s.pos < len(s.src) {
		s.skipSpace(true)
		if s.pos >= len(s.src) {
			break
		}
		switch s.src[s.pos] {
		case '[':
			table = s.header()
		default:
			start := s.pos
			s.keyValue(table)
			if s.pos == start {
				s.pos++ // Not TOML; make progress anyway.
			}
		}
	}
	return s.ix
}

func (s *lineScanner) peek(off int) byte {
	if s.pos+off < len(s.src) {
		return s.src[s.pos+off]
	}
	return 0
}

// skipSpace skips blanks and comments, and newlines too when nl is set.
func (s *lineScanner) skipSpace(nl bool) {
	for s.pos < len(s.src) {
		switch s.src[s.pos] {
		case ' ', '\t', '\r':
			s.pos++
		case '\n':
			if !nl {
				return
			}
			s.line++
			s.pos++
		case '#':
			for s.pos < len(s.src) && s.src[s.pos] != '\n' {
				s.pos++
			}
		default:
			return
		}
	}
}

func (s *lineScanner) record(path string, line int) {
	if _, ok := s.ix[path]; !ok && path != "" {
		s.ix[path] = line
	}
}

// header reads "[a.b]" or "[[a.b]]" and returns the resolved table path,
// with the index of the current element of every array of tables on it.
func (s *lineScanner) header() string {
	s.pos++ // '['
	array := s.peek(0) == '['
	if array {
		s.pos++
	}
	parts := s.key()
	for s.pos < len(s.src) && s.src[s.pos] != '\n' && s.src[s.pos] != ']' {
		s.pos++
	}
	for s.pos < len(s.src) && s.src[s.pos] == ']' {
		s.pos++
	}
	path := ""
	for i, p := range parts {
		path = joinKey(path, p)
		n, seen := s.arrays[path]
		switch {
		case array && i == len(parts)-1:
			s.arrays[path] = n + 1
			s.record(path, s.line)
			path = indexKey(path, n)
		case seen && n > 0:
			path = indexKey(path, n-1)
		}
		s.record(path, s.line)
	}
	return path
}

// key reads a possibly dotted, possibly quoted key and returns its parts.
func (s *lineScanner) key() []string {
	var parts []string
	for s.pos < len(s.src) {
		s.skipSpace(false)
		var p string
		switch c := s.peek(0); {
		case c == '"':
			p = s.basicString()
		case c == '\'':
			p = s.literalString()
		case isBareChar(c):
			start := s.pos
			for s.pos < len(s.src) && isBareChar(s.src[s.pos]) {
				s.pos++
			}
			p = s.src[start:s.pos]
		default:
			return parts
		}
		parts = append(parts, p)
		s.skipSpace(false)
		if s.peek(0) != '.' {
			return parts
		}
		s.pos++
	}
	return parts
}

// keyValue reads "key = value" in table and records the lines of its keys.
func (s *lineScanner) keyValue(table string) {
	line := s.line
	parts := s.key()
	path := table
	for _, p := range parts {
		path = joinKey(path, p)
		s.record(path, line)
	}
	s.skipSpace(false)
	if len(parts) == 0 || s.peek(0) != '=' {
		return
	}
	s.pos++
	s.skipSpace(false)
	s.value(path)
}

// value skips one value, recording keys inside inline tables and the lines
// of array elements.
func (s *lineScanner) value(path string) {
	switch s.peek(0) {
	case '"':
		if strings.HasPrefix(s.src[s.pos:], `"""`) {
			s.multiline(`"""`, true)
		} else {
			s.basicString()
		}
	case '\'':
		if strings.HasPrefix(s.src[s.pos:], `'''`) {
			s.multiline(`'''`, false)
		} else {
			s.literalString()
		}
	case '[':
		s.pos++
		for i := 0; s.pos < len(s.src); {
			s.skipSpace(true)
			switch s.peek(0) {
			case ']':
				s.pos++
				return
			case ',':
				s.pos++
			case 0:
				return
			default:
				el := indexKey(path, i)
				s.record(el, s.line)
				start := s.pos
				s.value(el)
				if s.pos == start {
					s.pos++
				}
				i++
			}
		}
	case '{':
		s.pos++
		for s.pos < len(s.src) {
			s.skipSpace(true)
			switch s.peek(0) {
			case '}':
				s.pos++
				return
			case ',':
				s.pos++
			case 0:
				return
			default:
				start := s.pos
				s.keyValue(path)
				if s.pos == start {
					s.pos++
				}
			}
		}
	default:
		for s.pos < len(s.src) && !strings.ContainsRune(",]}#\n", rune(s.src[s.pos])) {
			s.pos++
		}
	}
}

// basicString reads "..." and returns its contents, with \" and \\ undone;
// other escapes are kept as written, which is enough to name a key.
func (s *lineScanner) basicString() string {
	s.pos++
	var b strings.Builder
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		switch {
		case c == '"':
			s.pos++
			return b.String()
		case c == '\n':
			return b.String()
		case c == '\\' && s.pos+1 < len(s.src) && (s.src[s.pos+1] == '"' || s.src[s.pos+1] == '\\'):
			b.WriteByte(s.src[s.pos+1])
			s.pos += 2
			continue
		default:
			b.WriteByte(c)
		}
		s.pos++
	}
	return b.String()
}

func (s *lineScanner) literalString() string {
	s.pos++
	start := s.pos
	for s.pos < len(s.src) && s.src[s.pos] != '\'' && s.src[s.pos] != '\n' {
		s.pos++
	}
	str := s.src[start:s.pos]
	if s.peek(0) == '\'' {
		s.pos++
	}
	return str
}

// multiline skips a """ or ”' string, counting its lines. TOML lets up to
// two extra quotes end the content, as in """a"""".
func (s *lineScanner) multiline(delim string, escapes bool) {
	s.pos += 3
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		switch {
		case escapes && c == '\\':
			if s.peek(1) == '\n' {
				s.line++
			}
			s.pos += 2
			continue
		case c == '\n':
			s.line++
		case strings.HasPrefix(s.src[s.pos:], delim):
			s.pos += 3
			for i := 0; i < 2 && s.peek(0) == delim[0]; i++ {
				s.pos++
			}
			return
		}
		s.pos++
	}
}
