package channels

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
	"github.com/mfad/mfad/activity/natstest"
)

func TestMaskAddress(t *testing.T) {
	tests := []struct {
		kind mfa.Kind
		in   string
		want string
	}{
		{mfa.KindSMS, "+34600111222", "+34******222"}, // API.md's example
		{mfa.KindSMS, "+14155550123", "+14******123"},
		{mfa.KindSMS, "+491711234567", "+49*******567"},
		{mfa.KindSMS, "+123456789012345", "+12**********345"}, // E.164's longest
		{mfa.KindSMS, "+12345678", "+12***678"},               // and shortest we accept
		{mfa.KindSMS, "+12345", "******"},                     // too short to show any of it
		{mfa.KindSMS, "", ""},
		{mfa.KindEmail, "alice@example.com", "a****@example.com"},
		{mfa.KindEmail, "al@example.com", "a***@example.com"}, // never fewer than 3 stars
		{mfa.KindEmail, "a@example.com", "a***@example.com"},
		{mfa.KindEmail, "ñandú@example.es", "ñ****@example.es"}, // a character, not a byte
		{mfa.KindEmail, "élodie+mfa@exemple.fr", "é*********@exemple.fr"},
		{mfa.KindEmail, "@example.com", "****"},
		{mfa.KindEmail, "no-at-sign", "****"},
	}
	for _, tc := range tests {
		got := maskAddress(tc.kind, tc.in)
		if got != tc.want {
			t.Errorf("maskAddress(%s, %q) = %q, want %q", tc.kind, tc.in, got, tc.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("maskAddress(%s, %q) = %q is not valid UTF-8", tc.kind, tc.in, got)
		}
	}
}

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
	codes = append(codes, r.code(testPhone, templateChannelCode))
	r.ok(mfa.CmdChannelValidate, "alice", mfa.ChannelParams{Channel: mfa.KindSMS, Code: codes[0]})
	r.ok(mfa.CmdChannelRegister, "alice", mfa.ChannelParams{Channel: mfa.KindEmail, Address: testEmail})
	codes = append(codes, r.code(testEmail, templateChannelCode))
	r.ok(mfa.CmdChannelValidate, "alice", mfa.ChannelParams{Channel: mfa.KindEmail, Code: codes[1]})
	r.ok(mfa.CmdOTPSend, "alice", mfa.OTPSendParams{Method: mfa.KindSMS})
	codes = append(codes, r.code(testPhone, templateSignInCode))
	r.ok(mfa.CmdOTPSend, "alice", mfa.OTPSendParams{Method: mfa.KindEmail})
	codes = append(codes, r.code(testEmail, templateSignInCode))

	// The outbox does hold them, so their absence below is the sealing, not a miss.
	queued, _, err := r.w.readNotifications(context.Background(), 0, 100)
	if err != nil || len(queued) != 4 {
		t.Fatalf("%d notifications queued (%v), want 4", len(queued), err)
	}
	for i, q := range queued {
		if !bytes.Contains(q.body, []byte(`"code":"`+codes[i]+`"`)) {
			t.Fatalf("notification %d does not carry code %s: %s", i, codes[i], q.body)
		}
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
	var n notification
	if err := json.Unmarshal(msg.Data, &n); err != nil {
		t.Fatal(err)
	}
	if n.To != testEmail || n.UserID != "alice" || n.Template != templateChannelCode || len(n.Code) != 6 {
		t.Fatalf("published %s", msg.Data)
	}
	if msg.Header.Get(jetstream.MsgIDHeader) == "" {
		t.Fatal("published without Nats-Msg-Id: a re-publish after a crash would be stored twice")
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
}
