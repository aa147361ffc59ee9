package bench

import (
	"context"
	"errors"
	"fmt"
)

// ErrInterrupted reports that the caller's context ended (Ctrl-C, SIGTERM)
// before a lab was up or a demo done. The error wraps the context's cause, so
// it reads "interrupted: interrupt signal received", once, instead of what
// the cut-short step happened to be doing.
var ErrInterrupted = errors.New("interrupted")

// interrupted returns err unchanged unless ctx has ended; then it returns
// ErrInterrupted with the context's cause, dropping err, which only describes
// how the interrupt cut a step short. An err that already is ErrInterrupted
// stays as it is.
func interrupted(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil || errors.Is(err, ErrInterrupted) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrInterrupted, context.Cause(ctx))
}
