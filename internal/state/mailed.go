package state

// MailedFile records the failures post-invoke mailed during one
// unattended-upgrades run, which calls dpkg (and the hooks) once per step.
const MailedFile = "mailed.json"

// Mailed is what was mailed, and for which unattended-upgrades process:
// another process (or boot) starts afresh.
type Mailed struct {
	Schema int    `json:"schema"`
	Run    Proc   `json:"unattended_upgrade"`
	BootID string `json:"boot_id"`
	// Sent are the failed builds mailed, as their results were.
	Sent []Result `json:"sent"`
}
