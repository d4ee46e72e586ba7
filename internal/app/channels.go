package app

import "context"

// tell refreshes what people see (the notice, update-notifier's hook, the
// metrics) after a command that changed the boot entry without settling
// it (unpin): the lines about the next boot are the next settle's to say;
// Secure Boot's stay.
// Trouble is a W: line; the command's own outcome stands.
func (ce *cmdEnv) tell(ctx context.Context) {
	rec, err := ce.readStatus()
	if err != nil {
		ce.rep.Warnf("refreshing the notice and the metrics: %v", err)
		return
	}
	if ctx.Err() != nil {
		return
	}
	r := ce.recorder(ce.builder())
	view, err := r.View(rec.all)
	if err != nil {
		ce.rep.Warnf("refreshing the notice and the metrics: %v", err)
		return
	}
	r.Tell(view, nil, "", ce.secureBootLines(ctx, view)...)
}
