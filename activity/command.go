package activity

import (
	"encoding/json"
	"fmt"

	mfa "github.com/mfad/mfad"
)

// Origin says who sends a command, for whom and from where.
type Origin struct {
	UserID     string // whose factors
	Actor      string // who asks; the token subject
	Admin      bool
	EntryPoint string // From header
	Source     string // DruID source device
	Lang       string
	RequestID  string
	Key        string // Idempotency-Key or activity id; empty = not idempotent
}

// NewCommand builds the command envelope for one request.
func NewCommand(commandType string, o Origin, params any) (mfa.Command, error) {
	cmd := mfa.Command{
		ID:         mfa.NewID(),
		Key:        o.Key,
		Type:       commandType,
		UserID:     o.UserID,
		Actor:      o.Actor,
		Admin:      o.Admin,
		Source:     o.Source,
		EntryPoint: o.EntryPoint,
		Lang:       o.Lang,
		RequestID:  o.RequestID,
	}
	if params != nil {
		raw, err := json.Marshal(params)
		if err != nil {
			return mfa.Command{}, fmt.Errorf("encode %s params: %w", commandType, err)
		}
		cmd.Params = raw
	}
	return cmd, nil
}

// ValidEntryPoint is the rule for a From header, the entry point a method is created
// under (API.md §3): 1 to 128 printable ASCII characters, no spaces. It is the same for
// HTTP requests and ingested activities, so an entry point means the same over NATS and
// HTTP, and MFAD_MANDATORY_CHANNELS can name it.
func ValidEntryPoint(s string) bool { return PrintableToken(s, 128) }

// PrintableToken accepts 1 to max printable ASCII characters without spaces: safe to
// echo back in a header, to write to a log line and to name in configuration.
func PrintableToken(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
