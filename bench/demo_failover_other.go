//go:build !linux

package bench

import (
	"context"
	"io"
)

// RunFailoverDemo returns ErrUnsupported: the lab needs Linux namespaces.
func RunFailoverDemo(ctx context.Context, uvsBinary string, out io.Writer) error {
	return ErrUnsupported
}
