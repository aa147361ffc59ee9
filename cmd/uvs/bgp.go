package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/uvs-project/uvs/control"
)

// editDirector sends --drain-director or --undrain-director, which take no other flag but
// --socket.
func editDirector(fs *flag.FlagSet, socket string, drain bool, stdout, stderr io.Writer) int {
	others := 0
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "socket" {
			others++
		}
	})
	if others != 1 {
		fmt.Fprintln(stderr, "uvs: edit: --drain-director and --undrain-director take no other flag but --socket")
		return 1
	}
	cmd := control.EditUndrainDirector
	if drain {
		cmd = control.EditDrainDirector
	}
	resp := call(socket, &control.Request{Op: control.OpEdit, Edit: &control.Edit{Command: cmd}}, stderr)
	if resp == nil {
		return 1
	}
	fmt.Fprintf(stdout, "uvs: %s\n", resp.Message)
	return 0
}
