package mfa

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestReplyAppendJSONEveryField sets every field of Reply, so a field added to the
// type but not to AppendJSON fails here rather than vanishing from replies.
func TestReplyAppendJSONEveryField(t *testing.T) {
	var r Reply
	fill(t, reflect.ValueOf(&r).Elem())
	want, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.AppendJSON(nil); string(got) != string(want) {
		t.Errorf("AppendJSON\n got %s\nwant %s", got, want)
	}
}

// TestReplyAppendJSON: the hand-written encoding is json.Marshal's, byte for byte.
func TestReplyAppendJSON(t *testing.T) {
	for _, r := range []Reply{
		{},
		{OK: true},
		{OK: true, Message: "MFA status", Data: json.RawMessage(`{"user_id":"alice","methods":[]}`)},
		{Code: CodeTooManyAttempts, Message: "Too many attempts", RetryAfter: 300},
		{Code: CodeValidation, Field: "code", Reason: "format", Message: "El código no es válido"},
		{OK: true, Replayed: true, Data: json.RawMessage(`[1,2,3]`)},
		{Message: "<script>&\"quote\" \\ back\tslash\u2028\u2029\x7f"},
		{Message: "bad utf-8 \xff\xfe end", Code: "\x00"},
		{RetryAfter: -1, Reason: "négatif"},
	} {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.AppendJSON(nil); string(got) != string(want) {
			t.Errorf("AppendJSON(%+v)\n got %s\nwant %s", r, got, want)
		}
	}
}

// FuzzReplyAppendJSON compares with json.Marshal on any strings and any compact data.
func FuzzReplyAppendJSON(f *testing.F) {
	f.Add(true, "", "MFA status", "", "", 0, false, []byte(`{"a":1}`))
	f.Add(false, CodeValidation, "El código <b>", "code", "format", 30, true, []byte(`"x"`))
	f.Add(false, "\xff", "\u2028", "&", "\x1f", -5, false, []byte(nil))
	f.Fuzz(func(t *testing.T, ok bool, code, message, field, reason string, retry int, replayed bool, data []byte) {
		r := Reply{OK: ok, Code: code, Message: message, Field: field, Reason: reason, RetryAfter: retry, Replayed: replayed}
		if len(data) > 0 {
			if !json.Valid(data) {
				return
			}
			compact, err := json.Marshal(json.RawMessage(data))
			if err != nil {
				t.Fatal(err)
			}
			r.Data = compact
		}
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("AppendJSON(%+v)\n got %s\nwant %s", r, got, want)
		}
	})
}
