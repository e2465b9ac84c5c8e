package channels_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
	"github.com/mfad/mfad/activity/natstest"
	. "github.com/mfad/mfad/channels"
)

// dataFiles is every byte SQLite keeps for the store in dir: the database, its
// write-ahead log and shared memory.
func dataFiles(t *testing.T, dir string) []byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "mfad.db*"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no database files in %s: %v", dir, err)
	}
	var all []byte
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// TestNotificationsSealedAtRest: codes and addresses wait in the outbox sealed; the
// bytes on disk hold none of them. The worker is not on NATS, so every notification is
// still in the outbox when the files are read.
func TestNotificationsSealedAtRest(t *testing.T) {
	r := newPhoneRig(t, Config{})
	var codes []string
	r.ok(mfa.CmdChannelRegister, "alice", mfa.ChannelParams{Channel: mfa.KindSMS, Address: testPhone})
	codes = append(codes, r.code(testPhone, TemplateChannelCode))
	r.validate("alice", mfa.KindSMS, testPhone, codes[0])
	r.ok(mfa.CmdChannelRegister, "alice", mfa.ChannelParams{Channel: mfa.KindEmail, Address: testEmail})
	codes = append(codes, r.code(testEmail, TemplateChannelCode))
	r.validate("alice", mfa.KindEmail, testEmail, codes[1])
	r.ok(mfa.CmdOTPSend, "alice", mfa.OTPSendParams{Method: mfa.KindSMS})
	codes = append(codes, r.code(testPhone, TemplateSignInCode))
	r.ok(mfa.CmdOTPSend, "alice", mfa.OTPSendParams{Method: mfa.KindEmail})
	codes = append(codes, r.code(testEmail, TemplateSignInCode))

	// The outbox does hold them, so their absence below is the sealing, not a miss.
	queued, err := r.w.Outbox(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var carried []string
	for _, q := range queued {
		if q.Code != "" && bytes.Contains(q.Body, []byte(`"code":"`+q.Code+`"`)) {
			carried = append(carried, q.Code)
		}
	}
	if strings.Join(carried, ",") != strings.Join(codes, ",") {
		t.Fatalf("the outbox carries codes %v, want %v", carried, codes)
	}

	disk := dataFiles(t, r.dir)
	secrets := append([]string{testPhone, strings.TrimPrefix(testPhone, "+"), testEmail, `"template"`}, codes...)
	for _, s := range secrets {
		if i := bytes.Index(disk, []byte(s)); i >= 0 {
			t.Errorf("%q is in clear in the data files at %d: %q", s, i, disk[max(0, i-40):min(len(disk), i+40)])
		}
	}
	if !bytes.Contains(disk, []byte("+34******222")) {
		t.Fatal("the masked number is not in the files: the check above looked at the wrong bytes")
	}
}

// TestNotifyRelay: with the worker on NATS, each queued notification is published on
// its subject with the outbox row's id as Nats-Msg-Id, and the row is deleted.
func TestNotifyRelay(t *testing.T) {
	ns := natstest.Server(t)
	nc := natstest.Connect(t, ns.ClientURL())
	js := natstest.JetStream(t, nc)
	r := newPhoneRig(t, Config{})
	if err := r.w.Start(nc); err != nil {
		t.Fatal(err)
	}
	r.ok(mfa.CmdChannelRegister, "alice", mfa.ChannelParams{Channel: mfa.KindEmail, Address: testEmail})

	ctx := context.Background()
	stream, err := js.Stream(ctx, activity.NotifyStream)
	if err != nil {
		t.Fatal(err)
	}
	var msg *jetstream.RawStreamMsg
	deadline := time.Now().Add(10 * time.Second)
	for msg == nil {
		if msg, err = stream.GetLastMsgForSubject(ctx, activity.NotifyEmail); err != nil {
			msg = nil
			if time.Now().After(deadline) {
				t.Fatalf("no message on %s: %v", activity.NotifyEmail, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	var n Notification
	if err := json.Unmarshal(msg.Data, &n); err != nil {
		t.Fatal(err)
	}
	if n.To != testEmail || n.UserID != "alice" || n.Template != TemplateChannelCode || len(n.Code) != 6 {
		t.Fatalf("published %s", msg.Data)
	}
	if msg.Header.Get(jetstream.MsgIDHeader) == "" {
		t.Fatal("published without Nats-Msg-Id: a re-publish after a crash would be stored twice")
	}
	// The code leaves MFA_NOTIFY after an hour; a notice without one stays the stream's
	// week, for a gateway that was down.
	if ttl := msg.Header.Get(jetstream.MsgTTLHeader); ttl != activity.CodeMessageTTL.String() {
		t.Fatalf("the code's message has Nats-TTL %q, want %s", ttl, activity.CodeMessageTTL)
	}
	deadline = time.Now().Add(10 * time.Second)
	for r.count("SELECT count(*) FROM notify_outbox") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the published notification is still in the outbox")
		}
		time.Sleep(20 * time.Millisecond)
	}
	info, err := stream.Info(ctx)
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("MFA_NOTIFY holds %d messages (%v), want 1", info.State.Msgs, err)
	}
	if c := info.Config; !c.AllowMsgTTL || c.MaxAge < 24*time.Hour {
		t.Fatalf("MFA_NOTIFY allows per-message TTLs %t, keeps messages %v", c.AllowMsgTTL, c.MaxAge)
	}
	r.ok(mfa.CmdChannelValidate, "alice", mfa.ChannelParams{Channel: mfa.KindEmail, Code: n.Code})
	deadline = time.Now().Add(10 * time.Second)
	for {
		if msg, err = stream.GetLastMsgForSubject(ctx, activity.NotifyEmail); err == nil && msg.Sequence > 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no notice after the code: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	n = Notification{}
	if err := json.Unmarshal(msg.Data, &n); err != nil || n.Template != NoticeMethodAdded || n.Code != "" {
		t.Fatalf("published %s (%v), want the method-added notice", msg.Data, err)
	}
	if ttl := msg.Header.Get(jetstream.MsgTTLHeader); ttl != "" {
		t.Fatalf("the notice has Nats-TTL %q: it would leave MFA_NOTIFY before a gateway back from an outage sends it", ttl)
	}
}
