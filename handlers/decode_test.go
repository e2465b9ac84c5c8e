package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"

	mfa "github.com/mfad/mfad"
)

// TestMembersMatchByExactName: a member whose name differs from a field's only in case
// is an unknown field, ignored as the contract says, not the field itself (encoding/json
// alone would take it, and its value, for the field).
func TestMembersMatchByExactName(t *testing.T) {
	cases := []struct {
		name     string
		body     string
		wantName string
		wantErr  *mfa.Error // code, field and reason compared
	}{
		{"exact name", `{"device_name":"Phone"}`, "Phone", nil},
		{"a folded twin is ignored", `{"device_name":"Phone","DEVICE_NAME":5}`, "Phone", nil},
		{"a folded twin before it is ignored", `{"Device_Name":5,"device_name":"Phone"}`, "Phone", nil},
		{"only a folded name is no name", `{"Device_Name":"Phone"}`, "", mfa.Invalid("device_name", mfa.ReasonRequired)},
		{"Unicode folding too", "{\"device_nam\u212a\":\"x\"}", "", mfa.Invalid("device_name", mfa.ReasonRequired)},
		{"an escaped exact name is the name", `{"device\u005fname":"Phone"}`, "Phone", nil},
		{"the last of two exact names wins", `{"device_name":"A","DEVICE_NAME":1,"device_name":"B"}`, "B", nil},
		{"unknown members stay ignored", `{"device_name":"Phone","colour":{"r":1}}`, "Phone", nil},
		{"a wrong type is still named", `{"DEVICE_NAME":"x","device_name":5}`, "", mfa.Malformed("device_name", mfa.ReasonType)},
		{"data after the object", `{"Device_Name":"x","device_name":"Phone"} {}`, "", mfa.Malformed("body", mfa.ReasonSyntax)},
		{"a broken folded member", `{"DEVICE_NAME":tru,"device_name":"Phone"}`, "", mfa.Malformed("body", mfa.ReasonSyntax)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTOTPSetup([]byte(tc.body))
			if tc.wantErr == nil {
				if err != nil || got.DeviceName != tc.wantName {
					t.Fatalf("parseTOTPSetup(%s) = %q, %v; want %q", tc.body, got.DeviceName, err, tc.wantName)
				}
				return
			}
			var e *mfa.Error
			if !errors.As(err, &e) || e.Code != tc.wantErr.Code || e.Field != tc.wantErr.Field || e.Reason != tc.wantErr.Reason {
				t.Fatalf("parseTOTPSetup(%s) error %v, want %v", tc.body, err, tc.wantErr)
			}
		})
	}

	// The other decoders share the rule: a folded mfaMethod is no method (the default
	// authenticator), a folded code is no code.
	if _, err := parseSecretCreate([]byte(`{"MFAMETHOD":"sms"}`)); err != nil {
		t.Errorf("parseSecretCreate with MFAMETHOD: %v, want the default method", err)
	}
	if v, err := parseVerify([]byte(`{"CODE":"123456"}`)); err == nil {
		t.Errorf("parseVerify with CODE accepted %+v", v)
	}
}

// BenchmarkRequestDecoders: what decoding a sign-in and a setup body costs, the exact
// name check included (go test -run '^$' -bench RequestDecoders ./handlers).
func BenchmarkRequestDecoders(b *testing.B) {
	verify := []byte(`{"code":"123456"}`)
	setup := []byte(`{"device_name":"Alice's phone","colour":"blue"}`)
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := parseVerify(verify); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("setup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := parseTOTPSetup(setup); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzExactMembers: the cheap scan that lets a body skip the decoder pass never lets
// through a body from which the decoder pass would drop a member.
func FuzzExactMembers(f *testing.F) {
	for _, s := range decoderSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{`{"Code":"1"}`, `{"code":"1","CODE":2}`, "{\"bac\u212aup_code\":1}", "{\"u\u017fer_id\":\"x\"}", `{"\u0043ode":1}`, `{"\u0063ode":1}`,
		`{"x":"code","CODE":"y"}`, `{"backup_CODE":1}`, `{"user_id":"a","User_Id":"b"}`} {
		f.Add([]byte(s))
	}
	names := map[string]bool{"code": true, "backup_code": true, "challenge_id": true, "webauthn": true, "user_id": true}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) == 0 || body[0] != '{' || !utf8.Valid(body) {
			return // decodeJSON's earlier checks
		}
		out, err := dropFolded(body, names)
		if err == nil && !bytes.Equal(out, body) && !mayFoldOnto(body, names) {
			t.Fatalf("the scan missed a folded member in %q (dropped to %q)", body, out)
		}
	})
}

// FuzzDecodeMatchesExactNames: decodeJSON reads what a decoder that matches member
// names exactly reads: the last member of each exact name, case variants ignored, and a
// wrong type named by its field. The reference decodes into a map, which encoding/json
// keys exactly.
func FuzzDecodeMatchesExactNames(f *testing.F) {
	for _, s := range decoderSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{`{"Code":"1","device_id":2}`, `{"code":"1","CODE":2}`, "{\"co\u212ae\":1}",
		`{"\u0043ode":"x"}`, `{"code":"a","code":7}`, `{"DEVICE_ID":"x","device_id":3}`, `{"code":null}`} {
		f.Add([]byte(s))
	}
	type request struct {
		Code     *string `json:"code"`
		DeviceID *int64  `json:"device_id"`
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		trimmed := bytes.TrimSpace(body)
		if len(trimmed) == 0 || trimmed[0] != '{' || !utf8.Valid(trimmed) {
			return // decodeJSON's earlier checks
		}
		var got request
		err := decodeJSON(body, &got)

		var members map[string]json.RawMessage
		if json.Unmarshal(trimmed, &members) != nil {
			if err == nil {
				t.Fatalf("decodeJSON(%q) accepted a body the reference refuses", body)
			}
			return
		}
		var want request
		badType := map[string]bool{}
		if raw, ok := members["code"]; ok && json.Unmarshal(raw, &want.Code) != nil {
			badType["code"] = true
		}
		if raw, ok := members["device_id"]; ok && json.Unmarshal(raw, &want.DeviceID) != nil {
			badType["device_id"] = true
		}
		if len(badType) > 0 {
			var e *mfa.Error
			if !errors.As(err, &e) || e.Code != mfa.CodeMalformed || e.Reason != mfa.ReasonType || !badType[e.Field] {
				t.Fatalf("decodeJSON(%q) = %v, want a type error on one of %v", body, err, badType)
			}
			return
		}
		if err != nil {
			t.Fatalf("decodeJSON(%q) = %v, the reference reads it", body, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeJSON(%q) read %+v, the reference %+v", body, got, want)
		}
	})
}
