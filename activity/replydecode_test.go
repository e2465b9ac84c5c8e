package activity

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
)

// readReply is a reply as a worker writes it (json.Marshal'ed data inside
// mfa.Reply.AppendJSON) and the type of its data.
type readReply struct {
	body   []byte
	status bool // data is an mfa.Status, else mfa.Devices
}

func (r readReply) target() any {
	if r.status {
		return new(mfa.Status)
	}
	return new(mfa.Devices)
}

// readReplies are replies in the shapes status and list reads take.
func readReplies(t testing.TB) []readReply {
	t.Helper()
	t0 := time.Date(2026, 11, 30, 9, 15, 42, 123456789, time.UTC)
	later := t0.Add(90 * time.Minute).In(time.FixedZone("CET", 3600))
	methods := []mfa.Method{
		{ID: 1, Kind: mfa.KindTOTP, Label: "Phone", Verified: true, Voluntary: true, Primary: true, EntryPoint: "bank-app",
			CreatedAt: t0, VerifiedAt: &t0, LastUsedAt: &later},
		{ID: 9007199254740993, Kind: mfa.KindSMS, Label: "Móvil ☎", Destination: "+34 *** *** 222", Verified: true, CreatedAt: later},
		{ID: 3, Kind: mfa.KindEmail, Destination: "a***@example.com"},
	}
	var out []readReply
	add := func(r mfa.Reply, data any) {
		raw, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		r.Data = raw
		_, status := data.(mfa.Status)
		out = append(out, readReply{r.AppendJSON(nil), status})
	}
	for _, ms := range [][]mfa.Method{nil, {}, methods[:1], methods} {
		add(mfa.Reply{OK: true, Message: "Estado de MFA"}, mfa.Status{UserID: "alice", SignInEnabled: true, Methods: ms,
			BackupCodesRemaining: 7, BackupCodesTotal: 10, FailedAttempts: 2})
		add(mfa.Reply{OK: true, Replayed: true}, mfa.Status{UserID: "bob", Methods: ms, LockedUntil: &later})
		add(mfa.Reply{OK: true, Message: "Devices"}, mfa.Devices{Devices: ms})
	}
	add(mfa.Reply{Code: mfa.CodeTooManyAttempts, Message: "Too many attempts", RetryAfter: 300}, mfa.Status{})
	return out
}

// TestDecodeReadReply: the reader takes every reply a worker writes for a read, and
// gets what encoding/json gets.
func TestDecodeReadReply(t *testing.T) {
	for i, rr := range readReplies(t) {
		fast, slow := rr.target(), rr.target()
		reply, ok := decodeReadReply(rr.body, fast)
		if !ok {
			t.Fatalf("%d: refused %s", i, rr.body)
		}
		want := replyInto{Data: slow}
		if err := json.Unmarshal(rr.body, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(reply, want.Reply) || !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%s\nreader:        %+v %+v\nencoding/json: %+v %+v", rr.body, reply, fast, want.Reply, slow)
		}
	}
}

// TestDecodeReadReplyRefuses: what the reader does not handle goes to encoding/json.
func TestDecodeReadReplyRefuses(t *testing.T) {
	for _, body := range []string{
		` {"ok":true}`,
		`{"ok":true} `,
		`{"ok": true}`,
		`{"OK":true}`,
		`{"ok":true,"message":"\u003cb\u003e"}`,
		`{"ok":true,"extra":1}`,
		`{"ok":true,"ok":false}`,
		`{"ok":true,"data":{"methods":[{"id":1},{"id":1}],"methods":[{"label":"x"}]}}`,
		`{"ok":true,"data":null}`,
		`{"ok":true,"data":{"failed_attempts":1.5}}`,
		`{"ok":true,"data":{"failed_attempts":01}}`,
		`{"ok":true,"data":{"failed_attempts":99999999999999999999}}`,
		`{"ok":true,"data":{"user_id":null}}`,
		`{"ok":true,"data":{"locked_until":"yesterday"}}`,
		"{\"ok\":true,\"message\":\"\xff\"}",
		`{"ok":true`,
		``,
	} {
		var st mfa.Status
		if _, ok := decodeReadReply([]byte(body), &st); ok {
			t.Errorf("reader took %q", body)
		}
	}
	var other struct{ N int }
	if _, ok := decodeReadReply([]byte(`{"ok":true,"data":{"N":1}}`), &other); ok {
		t.Error("reader took a type it does not know")
	}
}

// FuzzDecodeReadReply: whatever the reader takes, encoding/json takes and decodes to the
// same values.
func FuzzDecodeReadReply(f *testing.F) {
	for _, rr := range readReplies(f) {
		f.Add(rr.body, rr.status)
	}
	f.Add([]byte(`{"ok":true,"data":{"methods":[],"methods":null}}`), true)
	f.Fuzz(func(t *testing.T, body []byte, status bool) {
		var fast, slow any = new(mfa.Devices), new(mfa.Devices)
		if status {
			fast, slow = new(mfa.Status), new(mfa.Status)
		}
		reply, ok := decodeReadReply(body, fast)
		if !ok {
			return
		}
		want := replyInto{Data: slow}
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatalf("reader took %q, encoding/json refuses it: %v", body, err)
		}
		if !reflect.DeepEqual(reply, want.Reply) || !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q\nreader:        %+v %+v\nencoding/json: %+v %+v", body, reply, fast, want.Reply, slow)
		}
	})
}
