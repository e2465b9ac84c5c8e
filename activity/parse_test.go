package activity_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
)

// remove, as a value in an edit, deletes the member instead of setting it.
type remove struct{}

// activityJSON is the activity of API.md §3 for verb, with edits applied: each edit is a
// dotted path ("actor.id") and the value to put there (remove{} deletes it). It lets
// every case below say only what it breaks.
func activityJSON(verb string, edits ...any) string {
	ctx := map[string]any{"mfa_channel": "sms"}
	switch verb {
	case activity.VerbUpdate:
		ctx["mfa_channel_address"] = "+34600111222"
	case activity.VerbValidate:
		ctx["mfa_code"] = "123456"
	}
	doc := map[string]any{
		"actor":   map[string]any{"id": "alice", "objectType": "person"},
		"verb":    verb,
		"object":  map[string]any{"objectType": "user"},
		"source":  map[string]any{"id": "pc", "objectType": "device"},
		"context": ctx,
	}
	for i := 0; i+1 < len(edits); i += 2 {
		keys := strings.Split(edits[i].(string), ".")
		node := doc
		for _, k := range keys[:len(keys)-1] {
			next, ok := node[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				node[k] = next
			}
			node = next
		}
		last := keys[len(keys)-1]
		if _, ok := edits[i+1].(remove); ok {
			delete(node, last)
		} else {
			node[last] = edits[i+1]
		}
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return string(raw)
}

// problem is one expected field error.
type problem struct{ field, reason string }

// parseCase is one row of the contract tables: a body posted to verb's endpoint and
// either the activity it is or the field errors it has, in the order Parse reports them.
type parseCase struct {
	name string
	verb string
	body string
	want activity.Activity
	errs []problem
}

// parseCases are API.md §3's rules, one row per rule; the fuzz target starts from them.
func parseCases() []parseCase {
	d, u, v := activity.VerbDelete, activity.VerbUpdate, activity.VerbValidate
	ok := func(verb string, mods ...func(*activity.Activity)) activity.Activity {
		a := activity.Activity{Verb: verb, ActorID: "alice", Source: "pc", Channel: mfa.KindSMS}
		switch verb {
		case u:
			a.Address = "+34600111222"
		case v:
			a.Code = "123456"
		}
		for _, m := range mods {
			m(&a)
		}
		return a
	}
	one := func(field, reason string) []problem { return []problem{{field, reason}} }
	long := strings.Repeat("a", 129)
	max := strings.Repeat("a", 128)

	cases := []parseCase{
		// The documented activity, for each verb.
		{name: "delete sms", verb: d, body: activityJSON(d), want: ok(d)},
		{name: "delete email", verb: d, body: activityJSON(d, "context.mfa_channel", "email"),
			want: ok(d, func(a *activity.Activity) { a.Channel = mfa.KindEmail })},
		// JSON text is UTF-8: a byte that is not is refused, even in a member mfad ignores.
		{name: "not UTF-8", verb: d, body: strings.Replace(activityJSON(d), `{`, "{\"summary\":\"caf\xff\",", 1),
			errs: one("body", mfa.ReasonSyntax)},
		{name: "delete totp", verb: d, body: activityJSON(d, "context.mfa_channel", "totp"),
			want: ok(d, func(a *activity.Activity) { a.Channel = mfa.KindTOTP })},
		{name: "delete webauthn", verb: d, body: activityJSON(d, "context.mfa_channel", "webauthn"),
			want: ok(d, func(a *activity.Activity) { a.Channel = mfa.KindWebAuthn })},
		{name: "update sms", verb: u, body: activityJSON(u), want: ok(u)},
		{name: "update email", verb: u, body: activityJSON(u, "context.mfa_channel", "email",
			"context.mfa_channel_address", "alice@example.com"),
			want: ok(u, func(a *activity.Activity) { a.Channel, a.Address = mfa.KindEmail, "alice@example.com" })},
		{name: "validate sms", verb: v, body: activityJSON(v), want: ok(v)},
		{name: "validate email", verb: v, body: activityJSON(v, "context.mfa_channel", "email", "context.mfa_code", "000000"),
			want: ok(v, func(a *activity.Activity) { a.Channel, a.Code = mfa.KindEmail, "000000" })},
		{name: "activity id kept", verb: d, body: activityJSON(d, "id", "urn:uuid:1"),
			want: ok(d, func(a *activity.Activity) { a.ID = "urn:uuid:1" })},
		{name: "actor id of 128 characters", verb: d, body: activityJSON(d, "actor.id", max),
			want: ok(d, func(a *activity.Activity) { a.ActorID = max })},
		{name: "actor id of 128 characters of two bytes", verb: d, body: activityJSON(d, "actor.id", strings.Repeat("ñ", 128)),
			want: ok(d, func(a *activity.Activity) { a.ActorID = strings.Repeat("ñ", 128) })},
		{name: "surrounding white space", verb: d, body: "\n\t " + activityJSON(d) + " \r\n", want: ok(d)},

		// AS2 aliases, as AS2 asks consumers to accept them.
		{name: "AS2 type for verb", verb: d, body: activityJSON(d, "verb", remove{}, "type", "delete"), want: ok(d)},
		{name: "AS2 capitalised activity type", verb: d, body: activityJSON(d, "verb", remove{}, "type", "Delete"), want: ok(d)},
		{name: "AS2 capitalised Update", verb: u, body: activityJSON(u, "verb", remove{}, "type", "Update"), want: ok(u)},
		{name: "AS2 type for objectType", verb: d, body: activityJSON(d,
			"actor.objectType", remove{}, "actor.type", "Person",
			"object.objectType", remove{}, "object.type", "User",
			"source.objectType", remove{}, "source.type", "Device"), want: ok(d)},
		{name: "objectType values ignore case", verb: d, body: activityJSON(d,
			"actor.objectType", "PERSON", "object.objectType", "User", "source.objectType", "dEvIcE"), want: ok(d)},
		{name: "null AS1 member falls back to the AS2 alias", verb: d, body: activityJSON(d, "verb", nil, "type", "delete"), want: ok(d)},
		{name: "AS1 name wins over the AS2 alias", verb: d, body: activityJSON(d, "type", "Update"), want: ok(d)},
		{name: "AS2 name for displayName is just another member", verb: d, body: activityJSON(d, "actor.name", "Alice", "actor.displayName", "Alice"), want: ok(d)},

		// Unknown members are ignored (API.md §0), wherever they are.
		{name: "unknown members ignored", verb: u, body: activityJSON(u, "@context", "http://activitystrea.ms/spec/1.0/",
			"published", "2025-01-01T00:00:00Z", "actor.url", 7, "object.id", []any{1}, "source.extra", map[string]any{},
			"context.mfa_code", "not read by update", "context.other", true), want: ok(u)},
		{name: "mfa_channel_address ignored by delete", verb: d, body: activityJSON(d, "context.mfa_channel_address", 12), want: ok(d)},
		{name: "mfa_code ignored by update", verb: u, body: activityJSON(u, "context.mfa_code", false), want: ok(u)},

		// Required members.
		{name: "actor missing", verb: d, body: activityJSON(d, "actor", remove{}), errs: one("actor", mfa.ReasonRequired)},
		{name: "actor null", verb: d, body: activityJSON(d, "actor", nil), errs: one("actor", mfa.ReasonRequired)},
		{name: "actor.id missing", verb: d, body: activityJSON(d, "actor.id", remove{}), errs: one("actor.id", mfa.ReasonRequired)},
		{name: "actor.id empty", verb: d, body: activityJSON(d, "actor.id", ""), errs: one("actor.id", mfa.ReasonRequired)},
		{name: "actor.objectType missing", verb: d, body: activityJSON(d, "actor.objectType", remove{}), errs: one("actor.objectType", mfa.ReasonRequired)},
		{name: "verb missing", verb: d, body: activityJSON(d, "verb", remove{}), errs: one("verb", mfa.ReasonRequired)},
		{name: "verb empty", verb: d, body: activityJSON(d, "verb", ""), errs: one("verb", mfa.ReasonRequired)},
		{name: "object missing", verb: d, body: activityJSON(d, "object", remove{}), errs: one("object", mfa.ReasonRequired)},
		{name: "object.objectType missing", verb: d, body: activityJSON(d, "object.objectType", remove{}), errs: one("object.objectType", mfa.ReasonRequired)},
		{name: "source missing", verb: d, body: activityJSON(d, "source", remove{}), errs: one("source", mfa.ReasonRequired)},
		{name: "source.id missing", verb: d, body: activityJSON(d, "source.id", remove{}), errs: one("source.id", mfa.ReasonRequired)},
		{name: "source.objectType missing", verb: d, body: activityJSON(d, "source.objectType", remove{}), errs: one("source.objectType", mfa.ReasonRequired)},
		{name: "context missing", verb: d, body: activityJSON(d, "context", remove{}), errs: one("context", mfa.ReasonRequired)},
		{name: "context.mfa_channel missing", verb: d, body: activityJSON(d, "context.mfa_channel", remove{}), errs: one("context.mfa_channel", mfa.ReasonRequired)},
		{name: "update without mfa_channel_address", verb: u, body: activityJSON(u, "context.mfa_channel_address", remove{}),
			errs: one("context.mfa_channel_address", mfa.ReasonRequired)},
		{name: "validate without mfa_code", verb: v, body: activityJSON(v, "context.mfa_code", remove{}),
			errs: one("context.mfa_code", mfa.ReasonRequired)},

		// Wrong JSON types.
		{name: "actor a string", verb: d, body: activityJSON(d, "actor", "alice"), errs: one("actor", mfa.ReasonType)},
		{name: "actor an array", verb: d, body: activityJSON(d, "actor", []any{"alice"}), errs: one("actor", mfa.ReasonType)},
		{name: "actor.id a number", verb: d, body: activityJSON(d, "actor.id", 42), errs: one("actor.id", mfa.ReasonType)},
		{name: "actor.objectType an object", verb: d, body: activityJSON(d, "actor.objectType", map[string]any{}), errs: one("actor.objectType", mfa.ReasonType)},
		{name: "verb a number", verb: d, body: activityJSON(d, "verb", 1), errs: one("verb", mfa.ReasonType)},
		{name: "AS2 type for verb a number", verb: d, body: activityJSON(d, "verb", remove{}, "type", 1), errs: one("verb", mfa.ReasonType)},
		{name: "object a boolean", verb: d, body: activityJSON(d, "object", true), errs: one("object", mfa.ReasonType)},
		{name: "source.id a number", verb: d, body: activityJSON(d, "source.id", 3), errs: one("source.id", mfa.ReasonType)},
		{name: "source a string", verb: d, body: activityJSON(d, "source", "pc"), errs: one("source", mfa.ReasonType)},
		{name: "context a string", verb: d, body: activityJSON(d, "context", "sms"), errs: one("context", mfa.ReasonType)},
		{name: "mfa_channel an array", verb: d, body: activityJSON(d, "context.mfa_channel", []any{"sms"}), errs: one("context.mfa_channel", mfa.ReasonType)},
		{name: "mfa_channel_address a number", verb: u, body: activityJSON(u, "context.mfa_channel_address", 34600111222),
			errs: one("context.mfa_channel_address", mfa.ReasonType)},
		{name: "mfa_code a number", verb: v, body: activityJSON(v, "context.mfa_code", 123456), errs: one("context.mfa_code", mfa.ReasonType)},
		{name: "id a number", verb: d, body: activityJSON(d, "id", 5), errs: one("id", mfa.ReasonType)},

		// Wrong values.
		{name: "actor.id too long", verb: d, body: activityJSON(d, "actor.id", long), errs: one("actor.id", mfa.ReasonLength)},
		{name: "actor.id of 129 characters in fewer bytes than 4×129", verb: d, body: activityJSON(d, "actor.id", strings.Repeat("ñ", 129)),
			errs: one("actor.id", mfa.ReasonLength)},
		{name: "actor.id with a bidi override", verb: d, body: activityJSON(d, "actor.id", "bob\u202egnp"), errs: one("actor.id", mfa.ReasonFormat)},
		{name: "actor.id with a control character", verb: d, body: activityJSON(d, "actor.id", "bob\u0007"), errs: one("actor.id", mfa.ReasonFormat)},
		{name: "actor.id with a zero-width space", verb: d, body: activityJSON(d, "actor.id", "bo\u200bb"), errs: one("actor.id", mfa.ReasonFormat)},
		{name: "actor.objectType user", verb: d, body: activityJSON(d, "actor.objectType", "user"), errs: one("actor.objectType", mfa.ReasonEnum)},
		{name: "object.objectType person", verb: d, body: activityJSON(d, "object.objectType", "person"), errs: one("object.objectType", mfa.ReasonEnum)},
		{name: "source.objectType phone", verb: d, body: activityJSON(d, "source.objectType", "phone"), errs: one("source.objectType", mfa.ReasonEnum)},
		{name: "source.id laptop", verb: d, body: activityJSON(d, "source.id", "laptop"), errs: one("source.id", mfa.ReasonEnum)},
		{name: "source.id is case-sensitive", verb: d, body: activityJSON(d, "source.id", "PC"), errs: one("source.id", mfa.ReasonEnum)},
		{name: "verb of another endpoint", verb: d, body: activityJSON(d, "verb", "update"), errs: one("verb", mfa.ReasonMismatch)},
		{name: "AS2 type of another endpoint", verb: v, body: activityJSON(v, "verb", remove{}, "type", "Delete"), errs: one("verb", mfa.ReasonMismatch)},
		{name: "verb unknown", verb: u, body: activityJSON(u, "verb", "post"), errs: one("verb", mfa.ReasonMismatch)},
		{name: "mfa_channel unknown", verb: d, body: activityJSON(d, "context.mfa_channel", "voice"), errs: one("context.mfa_channel", mfa.ReasonEnum)},
		{name: "mfa_channel is case-sensitive", verb: d, body: activityJSON(d, "context.mfa_channel", "SMS"), errs: one("context.mfa_channel", mfa.ReasonEnum)},
		{name: "totp cannot be updated", verb: u, body: activityJSON(u, "context.mfa_channel", "totp"), errs: one("context.mfa_channel", mfa.ReasonEnum)},
		{name: "totp cannot be validated", verb: v, body: activityJSON(v, "context.mfa_channel", "totp"), errs: one("context.mfa_channel", mfa.ReasonEnum)},
		{name: "webauthn cannot be updated", verb: u, body: activityJSON(u, "context.mfa_channel", "webauthn"), errs: one("context.mfa_channel", mfa.ReasonEnum)},
		{name: "webauthn cannot be validated", verb: v, body: activityJSON(v, "context.mfa_channel", "webauthn"), errs: one("context.mfa_channel", mfa.ReasonEnum)},
		{name: "sms address not E.164", verb: u, body: activityJSON(u, "context.mfa_channel_address", "600111222"),
			errs: one("context.mfa_channel_address", mfa.ReasonFormat)},
		{name: "sms address too short", verb: u, body: activityJSON(u, "context.mfa_channel_address", "+3460011"),
			errs: one("context.mfa_channel_address", mfa.ReasonFormat)},
		{name: "sms address with spaces", verb: u, body: activityJSON(u, "context.mfa_channel_address", "+34 600 111 222"),
			errs: one("context.mfa_channel_address", mfa.ReasonFormat)},
		{name: "sms address an e-mail", verb: u, body: activityJSON(u, "context.mfa_channel_address", "alice@example.com"),
			errs: one("context.mfa_channel_address", mfa.ReasonFormat)},
		{name: "email address a phone", verb: u, body: activityJSON(u, "context.mfa_channel", "email"),
			errs: one("context.mfa_channel_address", mfa.ReasonFormat)},
		{name: "email address without domain dot", verb: u, body: activityJSON(u, "context.mfa_channel", "email",
			"context.mfa_channel_address", "alice@localhost"), errs: one("context.mfa_channel_address", mfa.ReasonFormat)},
		{name: "email address with a display name", verb: u, body: activityJSON(u, "context.mfa_channel", "email",
			"context.mfa_channel_address", "Alice <alice@example.com>"), errs: one("context.mfa_channel_address", mfa.ReasonFormat)},
		{name: "mfa_code of 5 digits", verb: v, body: activityJSON(v, "context.mfa_code", "12345"), errs: one("context.mfa_code", mfa.ReasonFormat)},
		{name: "mfa_code of 7 digits", verb: v, body: activityJSON(v, "context.mfa_code", "1234567"), errs: one("context.mfa_code", mfa.ReasonFormat)},
		{name: "mfa_code with a letter", verb: v, body: activityJSON(v, "context.mfa_code", "12345a"), errs: one("context.mfa_code", mfa.ReasonFormat)},
		{name: "mfa_code with non-ASCII digits", verb: v, body: activityJSON(v, "context.mfa_code", "١٢٣٤٥٦"), errs: one("context.mfa_code", mfa.ReasonFormat)},

		// Every broken rule at once, each under its own path, in document order.
		{name: "several errors at once", verb: d,
			body: `{"verb":"update","actor":{"id":7},"object":{"objectType":"account"},` +
				`"source":{"id":"laptop","objectType":"device"},"context":{}}`,
			errs: []problem{
				{"verb", mfa.ReasonMismatch},
				{"actor.id", mfa.ReasonType},
				{"actor.objectType", mfa.ReasonRequired},
				{"object.objectType", mfa.ReasonEnum},
				{"source.id", mfa.ReasonEnum},
				{"context.mfa_channel", mfa.ReasonRequired},
			}},
		{name: "an empty object", verb: v, body: `{}`,
			errs: []problem{
				{"verb", mfa.ReasonRequired},
				{"actor", mfa.ReasonRequired},
				{"object", mfa.ReasonRequired},
				{"source", mfa.ReasonRequired},
				{"context", mfa.ReasonRequired},
			}},
		{name: "update with a bad channel does not judge the address", verb: u,
			body: activityJSON(u, "context.mfa_channel", "fax", "context.mfa_channel_address", "x", "source.objectType", 1),
			errs: []problem{{"source.objectType", mfa.ReasonType}, {"context.mfa_channel", mfa.ReasonEnum}}},

		// Bodies that are not a JSON object.
		{name: "empty body", verb: d, body: "", errs: one("body", mfa.ReasonRequired)},
		{name: "blank body", verb: d, body: " \n\t", errs: one("body", mfa.ReasonRequired)},
		{name: "null body", verb: d, body: "null", errs: one("body", mfa.ReasonRequired)},
		{name: "array body", verb: d, body: `[` + activityJSON(d) + `]`, errs: one("body", mfa.ReasonType)},
		{name: "string body", verb: d, body: `"delete"`, errs: one("body", mfa.ReasonType)},
		{name: "number body", verb: d, body: `42`, errs: one("body", mfa.ReasonType)},
		{name: "boolean body", verb: d, body: `true`, errs: one("body", mfa.ReasonType)},
		{name: "not JSON", verb: d, body: `verb=delete`, errs: one("body", mfa.ReasonSyntax)},
		{name: "truncated object", verb: d, body: activityJSON(d)[:40], errs: one("body", mfa.ReasonSyntax)},
		{name: "trailing garbage", verb: d, body: activityJSON(d) + "}", errs: one("body", mfa.ReasonSyntax)},
		{name: "two objects", verb: d, body: `{} {}`, errs: one("body", mfa.ReasonSyntax)},
		{name: "missing value", verb: d, body: `{"actor":}`, errs: one("body", mfa.ReasonSyntax)},
	}
	// Every documented device, and the ones DruID does not list.
	for _, src := range []string{"unknown", "pc", "mobile", "tablet", "game_console", "itv"} {
		cases = append(cases, parseCase{name: "source.id " + src, verb: d, body: activityJSON(d, "source.id", src),
			want: ok(d, func(a *activity.Activity) { a.Source = src })})
	}
	for _, src := range []string{"", "phone", "desktop", "smart_tv", " pc"} {
		reason := mfa.ReasonEnum
		if src == "" {
			reason = mfa.ReasonRequired
		}
		cases = append(cases, parseCase{name: fmt.Sprintf("source.id %q", src), verb: d,
			body: activityJSON(d, "source.id", src), errs: one("source.id", reason)})
	}
	return cases
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases() {
		t.Run(tc.name, func(t *testing.T) {
			a, err := activity.Parse([]byte(tc.body), tc.verb)
			if tc.errs == nil {
				if err != nil {
					t.Fatalf("Parse(%s) = %v, want %+v", tc.body, err, tc.want)
				}
				if !reflect.DeepEqual(a, tc.want) {
					t.Fatalf("Parse(%s)\n got %+v\nwant %+v", tc.body, a, tc.want)
				}
				return
			}
			if a != (activity.Activity{}) {
				t.Errorf("an invalid activity came back with content: %+v", a)
			}
			if got := problemsOf(t, err); !reflect.DeepEqual(got, tc.errs) {
				t.Fatalf("Parse(%s)\n got %v\nwant %v", tc.body, got, tc.errs)
			}
		})
	}
}

// problemsOf checks that err is the mfa.Problems of API.md: a wrong JSON type or a body
// that is not JSON is MALFORMED_REQUEST, any other broken rule VALIDATION_ERROR.
func problemsOf(t testing.TB, err error) []problem {
	t.Helper()
	var ps mfa.Problems
	if !errors.As(err, &ps) || len(ps) == 0 {
		t.Fatalf("error %v (%T) is not a non-empty mfa.Problems", err, err)
	}
	out := make([]problem, len(ps))
	for i, p := range ps {
		want := mfa.CodeValidation
		if p.Reason == mfa.ReasonType || p.Reason == mfa.ReasonSyntax {
			want = mfa.CodeMalformed
		}
		if p.Code != want {
			t.Errorf("%s (%s) has code %s, want %s", p.Field, p.Reason, p.Code, want)
		}
		out[i] = problem{p.Field, p.Reason}
	}
	return out
}

// TestParseErrorsAreOutcomes: the first problem is what errors.As and errors.Is see, so
// the error handlers map a parse failure like any other outcome.
func TestParseErrorsAreOutcomes(t *testing.T) {
	_, err := activity.Parse([]byte(`{}`), activity.VerbDelete)
	if e := mfa.AsError(err); e == nil || e.Field != "verb" || e.Code != mfa.CodeValidation {
		t.Fatalf("AsError = %+v, want the VALIDATION_ERROR on verb", e)
	}
	_, err = activity.Parse([]byte(`[`), activity.VerbDelete)
	if e := mfa.AsError(err); e == nil || e.Code != mfa.CodeMalformed || e.Field != "body" {
		t.Fatalf("AsError = %+v, want MALFORMED_REQUEST on body", e)
	}
}

func TestCommandOfActivity(t *testing.T) {
	tests := []struct {
		verb, body, typ string
		params          mfa.ChannelParams
	}{
		{activity.VerbDelete, activityJSON(activity.VerbDelete, "source.id", "mobile"), mfa.CmdChannelDelete,
			mfa.ChannelParams{Channel: mfa.KindSMS}},
		{activity.VerbUpdate, activityJSON(activity.VerbUpdate), mfa.CmdChannelRegister,
			mfa.ChannelParams{Channel: mfa.KindSMS, Address: "+34600111222"}},
		{activity.VerbValidate, activityJSON(activity.VerbValidate), mfa.CmdChannelValidate,
			mfa.ChannelParams{Channel: mfa.KindSMS, Code: "123456"}},
	}
	for _, tc := range tests {
		t.Run(tc.verb, func(t *testing.T) {
			a, err := activity.Parse([]byte(tc.body), tc.verb)
			if err != nil {
				t.Fatal(err)
			}
			cmd, err := a.Command(activity.Origin{UserID: "alice", Actor: "alice", EntryPoint: "bank-web", Key: "k"})
			if err != nil {
				t.Fatal(err)
			}
			var p mfa.ChannelParams
			if err := json.Unmarshal(cmd.Params, &p); err != nil {
				t.Fatal(err)
			}
			if cmd.Type != tc.typ || p != tc.params || cmd.EntryPoint != "bank-web" || cmd.Key != "k" ||
				cmd.Source != a.Source || cmd.ID == "" {
				t.Fatalf("command = %+v with params %+v", cmd, p)
			}
		})
	}
}

// FuzzParse: no input makes Parse panic, and every refusal is a list of field errors a
// dialect can render (a 400 naming the field, never a 500).
func FuzzParse(f *testing.F) {
	for _, tc := range parseCases() {
		f.Add([]byte(tc.body), tc.verb)
	}
	f.Fuzz(func(t *testing.T, body []byte, verb string) {
		a, err := activity.Parse(body, verb)
		if err != nil {
			var ps mfa.Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error %v (%T) is not a non-empty mfa.Problems", err, err)
			}
			for _, p := range ps {
				if p.Code != mfa.CodeValidation && p.Code != mfa.CodeMalformed {
					t.Fatalf("problem %v has code %s", p, p.Code)
				}
				if p.Field == "" || p.Reason == "" {
					t.Fatalf("problem %+v names no field or reason", p)
				}
			}
			if a != (activity.Activity{}) {
				t.Fatalf("invalid activity came back with content %+v", a)
			}
			return
		}
		// What Parse lets through satisfies every rule the workers rely on.
		if a.Verb != verb {
			t.Fatalf("verb %q accepted on %q", a.Verb, verb)
		}
		if !mfa.ValidUserID(a.ActorID) {
			t.Fatalf("actor id %q accepted", a.ActorID)
		}
		known := false
		for _, s := range activity.Sources {
			known = known || s == a.Source
		}
		if !known {
			t.Fatalf("source %q accepted", a.Source)
		}
		if _, ok := mfa.ParseKind(string(a.Channel)); !ok {
			t.Fatalf("channel %q accepted", a.Channel)
		}
		switch verb {
		case activity.VerbUpdate:
			if a.Channel == mfa.KindTOTP || !mfa.ValidAddress(a.Channel, a.Address) {
				t.Fatalf("update of %s to %q accepted", a.Channel, a.Address)
			}
		case activity.VerbValidate:
			if a.Channel == mfa.KindTOTP || len(a.Code) != 6 || strings.Trim(a.Code, "0123456789") != "" {
				t.Fatalf("validate of %s with %q accepted", a.Channel, a.Code)
			}
		}
		if _, err := a.Command(activity.Origin{UserID: a.ActorID}); err != nil {
			t.Fatalf("a valid activity has no command: %v", err)
		}
	})
}

// BenchmarkParse is the validation every DruID request and ingested activity pays.
func BenchmarkParse(b *testing.B) {
	body := []byte(`{"id":"a-1","actor":{"id":"alice","objectType":"person"},"verb":"update",
		"object":{"objectType":"user"},"source":{"id":"mobile","objectType":"device"},
		"context":{"mfa_channel":"sms","mfa_channel_address":"+34600111222"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := activity.Parse(body, activity.VerbUpdate); err != nil {
			b.Fatal(err)
		}
	}
}
