package migrate

import (
	"bytes"
	"net/netip"
	"regexp"
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// containsLine reports whether text has a line equal to line, leading
// spaces ignored.
func containsLine(text []byte, line string) bool {
	for _, l := range bytes.Split(text, []byte("\n")) {
		if string(bytes.TrimLeft(l, " ")) == line {
			return true
		}
	}
	return false
}

// targetNote matches the note written for a target key that config does
// not have yet.
var targetNote = regexp.MustCompile(`^(?:# uvs import: )?\S+: (\w+) = (.*): uvs has no \w+ key yet$`)

// hasNoteOrSetting reports whether text has the note line (a "# uvs
// import:" comment); for a target key that is switched on, it looks for
// the setting instead.
func hasNoteOrSetting(text []byte, note string) bool {
	if m := targetNote.FindStringSubmatch(note); m != nil && targetKeys[m[1]] {
		return containsLine(text, m[1]+" = "+m[2])
	}
	return containsLine(text, "# uvs import: "+note)
}
