package activity_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
	"github.com/mfad/mfad/activity/natstest"
)

// feedRig is an embedded JetStream with mfad's streams and a feed on MFA_EVENTS.
type feedRig struct {
	t    *testing.T
	js   jetstream.JetStream
	feed *activity.Feed
	n    int // events published so far
}

func newFeedRig(t *testing.T) *feedRig {
	ns := natstest.Server(t)
	js := natstest.JetStream(t, natstest.Connect(t, ns.ClientURL()))
	return &feedRig{t: t, js: js, feed: activity.NewFeed(js, slog.New(slog.NewTextHandler(io.Discard, nil)))}
}

// publish appends n events to MFA_EVENTS, alternating two types.
func (r *feedRig) publish(n int) {
	r.t.Helper()
	types := []string{mfa.EventVerifyFailed, mfa.EventTOTPDeviceRemoved}
	for range n {
		r.n++
		typ := types[r.n%2]
		body := fmt.Sprintf(`{"mfa:event":%q,"n":%d}`, typ, r.n)
		if _, err := r.js.Publish(context.Background(), activity.EventSubject(typ), []byte(body)); err != nil {
			r.t.Fatal(err)
		}
	}
}

// follow opens the feed and returns its events and the function that leaves it.
func (r *feedRig) follow(after uint64) (<-chan activity.FeedEvent, context.CancelFunc) {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r.t.Cleanup(cancel)
	events, err := r.feed.Events(ctx, after)
	if err != nil {
		r.t.Fatal(err)
	}
	return events, cancel
}

// expect reads the events with stream sequences from..to, in order, and checks each
// one's type and body against what publish sent.
func (r *feedRig) expect(events <-chan activity.FeedEvent, from, to uint64) {
	r.t.Helper()
	for seq := from; seq <= to; seq++ {
		select {
		case ev, ok := <-events:
			if !ok {
				r.t.Fatalf("feed closed before sequence %d", seq)
			}
			typ := []string{mfa.EventVerifyFailed, mfa.EventTOTPDeviceRemoved}[seq%2]
			want := fmt.Sprintf(`{"mfa:event":%q,"n":%d}`, typ, seq)
			if ev.Seq != seq || ev.Type != typ || string(ev.Body) != want {
				r.t.Fatalf("got seq %d %s %s; want seq %d %s %s", ev.Seq, ev.Type, ev.Body, seq, typ, want)
			}
		case <-time.After(5 * time.Second):
			r.t.Fatalf("no event with sequence %d", seq)
		}
	}
}

// quiet checks that nothing more arrives for a moment.
func (r *feedRig) quiet(events <-chan activity.FeedEvent) {
	r.t.Helper()
	select {
	case ev := <-events:
		r.t.Fatalf("unexpected event %d %s", ev.Seq, ev.Type)
	case <-time.After(200 * time.Millisecond):
	}
}

func (r *feedRig) consumers() int {
	r.t.Helper()
	s, err := r.js.Stream(context.Background(), activity.EventsStream)
	if err != nil {
		r.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	return info.State.Consumers
}

func TestFeedStartsWithTheTailThenGoesLive(t *testing.T) {
	r := newFeedRig(t)
	r.publish(activity.FeedTail + 10)
	events, _ := r.follow(0)
	r.expect(events, 11, activity.FeedTail+10)
	r.quiet(events)
	r.publish(2)
	r.expect(events, activity.FeedTail+11, activity.FeedTail+12)
}

func TestFeedOnAnEmptyStreamWaitsForTheFirstEvent(t *testing.T) {
	r := newFeedRig(t)
	events, _ := r.follow(0)
	r.quiet(events)
	r.publish(3)
	r.expect(events, 1, 3)
}

func TestFeedShortStreamIsSentWhole(t *testing.T) {
	r := newFeedRig(t)
	r.publish(5)
	events, _ := r.follow(0)
	r.expect(events, 1, 5)
}

func TestFeedResumesAfterLastSeen(t *testing.T) {
	r := newFeedRig(t)
	r.publish(80)
	events, _ := r.follow(7) // older than the tail: resuming wins, nothing is skipped
	r.expect(events, 8, 80)
	r.quiet(events)

	events, _ = r.follow(80) // up to date: only what comes next
	r.quiet(events)
	r.publish(1)
	r.expect(events, 81, 81)
}

func TestFeedAfterBeyondTheStreamStartsOver(t *testing.T) {
	r := newFeedRig(t)
	r.publish(3)
	// A viewer that saw sequence 900 of an earlier incarnation of the stream.
	events, _ := r.follow(900)
	r.expect(events, 1, 3)
}

func TestFeedDeletesItsConsumerWhenTheViewerLeaves(t *testing.T) {
	r := newFeedRig(t)
	r.publish(2)
	events, leave := r.follow(0)
	r.expect(events, 1, 2)
	if n := r.consumers(); n != 1 {
		t.Fatalf("%d consumers while following, want 1", n)
	}
	leave()
	select {
	case _, ok := <-events:
		if ok {
			t.Fatal("an event after leaving")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the feed did not close when its context ended")
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.consumers() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d consumers left after the viewer went", r.consumers())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFeedWithoutStream(t *testing.T) {
	ns := natstest.Server(t)
	js, err := jetstream.New(natstest.Connect(t, ns.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	feed := activity.NewFeed(js, nil)
	if _, err := feed.Events(context.Background(), 0); err == nil {
		t.Fatal("a feed opened on a server without MFA_EVENTS")
	}
}

func TestFeedCloseEndsEveryViewer(t *testing.T) {
	r := newFeedRig(t)
	r.publish(1)
	a, _ := r.follow(0)
	b, _ := r.follow(0)
	r.expect(a, 1, 1)
	r.expect(b, 1, 1)
	r.feed.Close()
	for _, events := range []<-chan activity.FeedEvent{a, b} {
		select {
		case _, ok := <-events:
			if ok {
				t.Fatal("an event after Close")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a viewer's events stayed open after Close")
		}
	}
	if _, err := r.feed.Events(context.Background(), 0); err == nil {
		t.Fatal("a closed feed took a new viewer")
	}
}
