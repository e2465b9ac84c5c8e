package handlers

import (
	"errors"
	"mime"

	"github.com/labstack/echo/v4"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
)

// The DruID dialect (API.md §3): POST /activityid/v1/mfa/{delete,update,validate} with
// an Activity Streams 1.0 activity; every answer is {"result":{status,…}}.

var druidSuccess = map[string]string{
	activity.VerbDelete:   mfa.MsgChannelDeleted,
	activity.VerbUpdate:   mfa.MsgChannelUpdated,
	activity.VerbValidate: mfa.MsgChannelValidated,
}

// handleActivity returns the handler of one DruID verb.
func (s *server) handleActivity(verb string) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		var problems mfa.Problems
		if mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType)); err != nil || mt != echo.MIMEApplicationJSON {
			problems = append(problems, mfa.Invalid("Content-Type", mfa.ReasonFormat))
		}
		// From names the entry point that voluntary/mandatory is judged by; it is
		// checked with the body so that every broken rule is reported at once.
		switch from := req.Header.Get("From"); {
		case from == "":
			problems = append(problems, mfa.Invalid("From", mfa.ReasonRequired))
		case !activity.ValidEntryPoint(from):
			problems = append(problems, mfa.Invalid("From", mfa.ReasonFormat))
		}
		body, err := readBody(c)
		if err != nil {
			return err
		}
		a, err := activity.Parse(body, verb)
		if err != nil {
			var more mfa.Problems
			if errors.As(err, &more) {
				problems = append(problems, more...)
			} else {
				return err
			}
		}
		if err := problems.Err(); err != nil {
			return err
		}
		if a.ActorID != principal(c).Subject {
			return &mfa.Error{Code: mfa.CodeForbidden, Field: "actor.id", Reason: mfa.ReasonMismatch}
		}
		reply, err := s.send(c, request{idempotent: true, build: a.Command})
		if err != nil {
			return err
		}
		// The worker's own words: a reply replayed for an Idempotency-Key says what the
		// first request did, not what this endpoint would have done.
		message := reply.Message
		if message == "" {
			message = mfa.Text(language(c), druidSuccess[verb])
		}
		return druidOK(c, message)
	}
}
