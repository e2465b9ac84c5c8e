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

// TestDecodeReadReplyEveryField fills every field of Status and of its Method by
// reflection: a field added to those types but not to the reader would send every
// read back to encoding/json, silently.
func TestDecodeReadReplyEveryField(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 1, 2, 3, 4, time.UTC)
	fill := func(v reflect.Value) {
		for i := range v.NumField() {
			f := v.Field(i)
			switch {
			case f.Type() == reflect.TypeFor[time.Time]():
				f.Set(reflect.ValueOf(t0))
			case f.Type() == reflect.TypeFor[*time.Time]():
				f.Set(reflect.ValueOf(&t0))
			case f.Kind() == reflect.String:
				f.SetString(v.Type().Field(i).Name)
			case f.Kind() == reflect.Bool:
				f.SetBool(true)
			case f.CanInt():
				f.SetInt(int64(i + 1))
			case f.Type() == reflect.TypeFor[[]mfa.Method]():
			default:
				t.Fatalf("%s.%s of type %s: teach this test and the reader about it", v.Type(), v.Type().Field(i).Name, f.Type())
			}
		}
	}
	var m mfa.Method
	fill(reflect.ValueOf(&m).Elem())
	var st mfa.Status
	fill(reflect.ValueOf(&st).Elem())
	st.Methods = []mfa.Method{m, m}
	for _, data := range []any{st, mfa.Devices{Devices: st.Methods}} {
		raw, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		body := mfa.Reply{OK: true, Message: "m", Data: raw}.AppendJSON(nil)
		_, status := data.(mfa.Status)
		rr := readReply{body, status}
		got := rr.target()
		if _, ok := decodeReadReply(body, got); !ok {
			t.Fatalf("refused %s", body)
		}
		if !reflect.DeepEqual(reflect.ValueOf(got).Elem().Interface(), data) {
			t.Fatalf("got %+v\nwant %+v", got, data)
		}
	}
}

// TestDecodeReadReplyLeavesTarget: a nil or already filled target is left to
// encoding/json (which merges into what is there), and a refused reply leaves the
// target untouched.
func TestDecodeReadReplyLeavesTarget(t *testing.T) {
	body := readReplies(t)[0].body
	if _, ok := decodeReadReply(body, (*mfa.Status)(nil)); ok {
		t.Error("took a nil target")
	}
	filled := mfa.Status{UserID: "before"}
	if _, ok := decodeReadReply(body, &filled); ok || filled.UserID != "before" {
		t.Errorf("took a filled target: %v, %+v", ok, filled)
	}
	var st mfa.Status
	cut := body[:len(body)-1] // refused only at its very end
	if _, ok := decodeReadReply(cut, &st); ok || !reflect.DeepEqual(st, mfa.Status{}) {
		t.Errorf("a refused reply changed the target: %v, %+v", ok, st)
	}
}
