package boot

import (
	"context"

	"github.com/dkms-guard/dkms-guard/internal/results"
)

// notes are the Notes lines, none when unset.
func (k *Keeper) notes(ctx context.Context, view []results.Kernel) []string {
	if k.Notes == nil {
		return nil
	}
	return k.Notes(ctx, view)
}
