package activity

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DomainAuto makes OpenStream find the way to mfad's streams by itself.
const DomainAuto = "auto"

// OpenStream finds stream name for a client of mfad's streams: through JetStream domain
// domain, through mfad's own account's JetStream when domain is empty, or with
// DomainAuto through OutsideDomain first (an outside user of the embedded server or of
// README's NATS configuration) and then directly (mfad's own account, a server without
// accounts). Where the outside domain does not exist the first try ends at once (no
// responders), unless a user's permissions refuse it: then it waits out probeWait.
func OpenStream(ctx context.Context, nc *nats.Conn, name, domain string) (jetstream.JetStream, jetstream.Stream, error) {
	if domain != DomainAuto {
		return openStream(ctx, nc, name, domain)
	}
	pctx, cancel := context.WithTimeout(ctx, probeWait)
	js, s, err := openStream(pctx, nc, name, OutsideDomain)
	cancel()
	if err == nil || errors.Is(err, jetstream.ErrStreamNotFound) || ctx.Err() != nil {
		return js, s, err
	}
	return openStream(ctx, nc, name, "")
}

// probeWait bounds the try through the outside domain.
const probeWait = 2 * time.Second

func openStream(ctx context.Context, nc *nats.Conn, name, domain string) (jetstream.JetStream, jetstream.Stream, error) {
	var (
		js  jetstream.JetStream
		err error
	)
	if domain == "" {
		js, err = jetstream.New(nc)
	} else {
		js, err = jetstream.NewWithDomain(nc, domain)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("JetStream: %w", err)
	}
	s, err := js.Stream(ctx, name)
	if err != nil {
		where := "JetStream"
		if domain != "" {
			where = "JetStream domain " + domain
		}
		return nil, nil, fmt.Errorf("stream %s through %s: %w", name, where, err)
	}
	return js, s, nil
}
