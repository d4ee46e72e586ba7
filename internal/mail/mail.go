// Package mail sends dkms-guard's own mail: a plain-text message handed
// to the local mail transfer agent as `sendmail -oi -t`, the way
// unattended-upgrades sends its report (its _send_mail_using_sendmail), so
// that it goes wherever the administrator's mail goes.
package mail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"strings"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/program"
)

// Message is one mail. From and To are addresses as apt's configuration
// gives them; the body is plain UTF-8 text.
type Message struct {
	From, To, Subject string
	Body              string
}

// Bytes is the message as sendmail -t reads it: headers (recipients
// included), a blank line, the body. A header value never carries a line
// break (an address from a configuration file must not add headers), and
// a subject that is not plain ASCII is encoded (RFC 2047).
func (m Message) Bytes() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\n", oneLine(m.From))
	fmt.Fprintf(&b, "To: %s\n", oneLine(m.To))
	fmt.Fprintf(&b, "Subject: %s\n", mime.QEncoding.Encode("utf-8", oneLine(m.Subject)))
	// RFC 3834: no vacation replies to a machine's report.
	b.WriteString("Auto-Submitted: auto-generated\n")
	b.WriteString("MIME-Version: 1.0\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\n")
	b.WriteString("Content-Transfer-Encoding: 8bit\n\n")
	body := strings.ReplaceAll(m.Body, "\r", "")
	b.WriteString(body)
	if !strings.HasSuffix(body, "\n") {
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), " ")
}

// Sendmail runs sendmail, found on PATH by its bare name (Debian's MTAs
// all provide /usr/sbin/sendmail).
type Sendmail struct{}

// sendTimeout bounds sendmail: it queues the message and returns; a hung
// MTA must not hold apt (unattended-upgrades waits for the hook).
const sendTimeout = 60 * time.Second

// Send hands m to sendmail: -t takes the recipients from the headers,
// -oi keeps a line holding a single dot from ending the message.
func (Sendmail) Send(ctx context.Context, m Message) error {
	out := &program.Capped{Max: 16 << 10}
	err := program.Cmd{Name: "sendmail", Args: []string{"-oi", "-t"}, In: bytes.NewReader(m.Bytes()), Timeout: sendTimeout, Out: out}.Run(ctx)
	if errors.Is(err, program.ErrNotFound) {
		return err // "sendmail: not found on PATH"
	}
	if err != nil {
		if first, _, _ := strings.Cut(strings.TrimSpace(out.String()), "\n"); first != "" {
			return fmt.Errorf("sendmail: %w: %s", err, first)
		}
		return fmt.Errorf("sendmail: %w", err)
	}
	return nil
}
