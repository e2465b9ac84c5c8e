package gateway

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/mfad/mfad/activity"
)

// Channels, as the last token of the subject (mfa.notify.<channel>) and as the channel
// label of the metrics.
const (
	ChannelSMS   = "sms"
	ChannelEmail = "email"
	// channelOther labels a subject under mfa.notify.> that names no channel the gateway
	// knows, so that no publisher can create metric series at will.
	channelOther = "other"
)

// Notification is the body of a message on mfa.notify.sms|email (API.md §4).
type Notification struct {
	To       string `json:"to"`
	UserID   string `json:"user_id"`
	Template string `json:"template"`
	Code     string `json:"code,omitempty"`
	Lang     string `json:"lang"`
	// ExpiresAt is when the code stops working (RFC 3339); for mfa_locked, when the
	// lock ends, if it ends by itself (the workers send mfa_locked for a lock that
	// lasts until an administrator lifts it, without one).
	ExpiresAt string `json:"expires_at,omitempty"`
	// Changed is the command that changed the user's factors, for security notices.
	Changed string `json:"changed,omitempty"`
}

// decodeNotification reads a message body. The fields a message cannot be sent without
// are checked here, so that such a message is dead-lettered once rather than retried.
func decodeNotification(body []byte) (Notification, error) {
	var n Notification
	if err := json.Unmarshal(body, &n); err != nil {
		return n, fmt.Errorf("invalid notification: %w", err)
	}
	switch {
	case strings.TrimSpace(n.To) == "":
		return n, fmt.Errorf("invalid notification: no recipient (to)")
	case n.Template == "":
		return n, fmt.Errorf("invalid notification: no template")
	}
	return n, nil
}

// expires is ExpiresAt parsed; ok is false when there is none or it does not parse.
func (n Notification) expires() (time.Time, bool) {
	if n.ExpiresAt == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, n.ExpiresAt)
	return t, err == nil
}

// channelOf is the channel a subject is for: mfa.notify.sms → sms.
func channelOf(subject string) string {
	ch, ok := strings.CutPrefix(subject, strings.TrimSuffix(activity.NotifySubjects, ">"))
	if !ok || ch == "" {
		return channelOther
	}
	return ch
}

// metricChannel is the channel label: sms, email or other.
func metricChannel(ch string) string {
	if ch == ChannelSMS || ch == ChannelEmail {
		return ch
	}
	return channelOther
}
