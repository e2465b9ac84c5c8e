package handlers

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
)

// IdempotencyHeader carries the client's retry key (API.md §0).
const IdempotencyHeader = "Idempotency-Key"

// request says how one HTTP request becomes a command.
type request struct {
	typ    string
	params any
	userID string // acting for this user (admin); empty = the caller
	// idempotent: the command changes state, so Idempotency-Key applies.
	idempotent bool
	// build makes the command from its origin when the request is not a typ and params
	// of its own: a DruID activity translates itself (activity.Activity.Command), the
	// same way for HTTP and for the ingest stream.
	build func(activity.Origin) (mfa.Command, error)
}

// send builds the command for r, sends it, and returns its reply. A reply that is not
// OK comes back as its outcome error, for the dialect's error handler.
func (s *server) send(c echo.Context, r request) (mfa.Reply, error) {
	return s.sendInto(c, r, nil)
}

// sendInto is send that decodes the reply's data into data, when not nil.
func (s *server) sendInto(c echo.Context, r request, data any) (mfa.Reply, error) {
	p := principal(c)
	o := activity.Origin{
		UserID:    p.Subject,
		Actor:     p.Subject,
		Admin:     p.Admin(),
		Lang:      language(c),
		RequestID: c.Response().Header().Get(echo.HeaderXRequestID),
	}
	if r.userID != "" {
		o.UserID = r.userID
	}
	if from := c.Request().Header.Get("From"); from != "" {
		if !activity.ValidEntryPoint(from) {
			return mfa.Reply{}, mfa.Invalid("From", mfa.ReasonFormat)
		}
		o.EntryPoint = from
	}
	if key := c.Request().Header.Get(IdempotencyHeader); key != "" && r.idempotent {
		if !utf8.ValidString(key) || strings.ContainsFunc(key, unicode.IsControl) {
			// Bytes that are not UTF-8 would become U+FFFD on their way into the
			// command's JSON, and different keys one.
			return mfa.Reply{}, mfa.Malformed(IdempotencyHeader, mfa.ReasonFormat)
		}
		if len(key) > 255 {
			return mfa.Reply{}, mfa.Invalid(IdempotencyHeader, mfa.ReasonLength)
		}
		if strings.HasPrefix(key, activity.ReservedKeyPrefix) {
			// The activity ingester's keys live in the same per-user space: a client
			// must not be able to take one before the activity arrives.
			return mfa.Reply{}, mfa.Invalid(IdempotencyHeader, mfa.ReasonFormat)
		}
		o.Key = key
	}
	var cmd mfa.Command
	var err error
	if r.build != nil {
		cmd, err = r.build(o)
	} else {
		cmd, err = activity.NewCommand(r.typ, o, r.params)
	}
	if err != nil {
		return mfa.Reply{}, err
	}
	reply, err := s.bus.SendInto(c.Request().Context(), cmd, data)
	if err != nil {
		return mfa.Reply{}, err
	}
	if reply.Replayed {
		c.Response().Header().Set("Idempotent-Replayed", "true")
	}
	return reply, reply.Err()
}

// sendFor is send for a reply whose data is a T.
func sendFor[T any](s *server, c echo.Context, r request) (T, mfa.Reply, error) {
	var data T
	reply, err := s.sendInto(c, r, &data)
	return data, reply, err
}
