package channels

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
)

// service is the "mfa" micro service: one endpoint per command type under mfa.cmd.>, in
// queue group mfa-workers so any number of workers share the load.
type service struct {
	svc micro.Service
}

// startService registers the endpoints of routes on nc. Each request is decoded and
// handed to submit, which answers through respond.
func startService(nc *nats.Conn, version string, routes map[string]route,
	submit func(*mfa.Command, func(mfa.Reply)), log *slog.Logger) (*service, error) {
	svc, err := micro.AddService(nc, micro.Config{
		Name:        activity.ServiceName,
		Version:     version,
		Description: "mfad command workers: MFA factors, lockout, audit",
		QueueGroup:  activity.QueueGroup,
	})
	if err != nil {
		return nil, fmt.Errorf("add micro service: %w", err)
	}
	for typ := range routes {
		err := svc.AddEndpoint(activity.EndpointName(typ), endpoint(typ, submit, log),
			micro.WithEndpointSubject(activity.CommandSubject(typ)))
		if err != nil {
			_ = svc.Stop()
			return nil, fmt.Errorf("add endpoint %s: %w", typ, err)
		}
	}
	return &service{svc: svc}, nil
}

// endpoint adapts a micro request to submit. nats.go runs a subscription's callback for
// one message at a time, so the callback only hands the command on, or answers a read
// the cache holds, which costs less than handing it on; other replies are sent when
// their transaction is done.
func endpoint(typ string, submit func(*mfa.Command, func(mfa.Reply)), log *slog.Logger) micro.Handler {
	return micro.HandlerFunc(func(req micro.Request) {
		respond := func(r mfa.Reply) {
			if err := req.Respond(r.AppendJSON(make([]byte, 0, 128+len(r.Data)))); err != nil {
				log.Warn("reply to command", "type", typ, "err", err)
			}
		}
		var cmd mfa.Command
		if err := json.Unmarshal(req.Data(), &cmd); err != nil {
			respond(mfa.ErrorReply(mfa.Malformed("command", mfa.ReasonSyntax), mfa.LangEnglish))
			return
		}
		cmd.Type = typ // the subject decides, not the body
		submit(&cmd, respond)
	})
}

// stop unsubscribes the endpoints. nats.go drains them asynchronously: requests already
// delivered still reach submit, which answers them or, once the worker is closed,
// refuses them with SERVICE_UNAVAILABLE so the caller retries elsewhere. stop waits a
// moment for those.
func (s *service) stop(ctx context.Context) error {
	err := s.svc.Stop()
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return err
}
