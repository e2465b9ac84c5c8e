package gateway

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// Dev prints every message, with its code, instead of delivering it: for trying mfad
// on a laptop (mfad gateway --dev) and nowhere else, since whoever reads its output
// can confirm anyone's channel.
type Dev struct {
	mu sync.Mutex // messages are printed whole, never interleaved
	w  io.Writer
}

// NewDev returns a sender that prints to w.
func NewDev(w io.Writer) *Dev { return &Dev{w: w} }

// Send prints m: a first line saying what and for whom, with the code at its end so a
// script can take it (`code 123456`), then the text as it would arrive.
func (d *Dev) Send(_ context.Context, m Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	head := fmt.Sprintf("--- %s to %s, %s (%s)", m.Channel, m.To, m.Template, m.Lang)
	if m.Code != "" {
		head += ", code " + m.Code
	}
	var err error
	if m.Channel == ChannelEmail {
		_, err = fmt.Fprintf(d.w, "%s\nSubject: %s\n\n%s\n\n", head, m.Subject, m.Text)
	} else {
		_, err = fmt.Fprintf(d.w, "%s\n%s\n\n", head, m.Text)
	}
	return err
}
