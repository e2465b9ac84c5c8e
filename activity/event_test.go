package activity_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
)

// documented are the members API.md §4 lists; anything else must be an mfa: extension.
var documented = map[string]bool{
	"@context": true, "id": true, "type": true, "summary": true, "actor": true, "object": true,
	"origin": true, "target": true, "instrument": true, "generator": true, "published": true,
}

func sampleEvent(typ string) mfa.Event {
	return mfa.Event{
		ID:         "6f1c1f5e-8a8b-4c39-9b0e-3f4e6d2a1b7c",
		Type:       typ,
		UserID:     "alice",
		Actor:      "alice",
		EntryPoint: "bank-app",
		Source:     "mobile",
		Object:     mfa.EventObject{Type: mfa.ObjectTOTPDevice, ID: "42", Name: "Phone"},
		Time:       time.Date(2025, 3, 4, 5, 6, 7, 891234567, time.FixedZone("CET", 3600)),
	}
}

func decode(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, body)
	}
	return doc
}

// TestEncodeEventPerAS2Type checks the contract members for one event of each AS2 type
// the catalogue uses, including where origin and target appear.
func TestEncodeEventPerAS2Type(t *testing.T) {
	tests := []struct {
		event, as2     string
		origin, target bool
	}{
		{mfa.EventTOTPDeviceSetUp, "Create", false, true},
		{mfa.EventTOTPDeviceVerified, "Add", false, true},
		{mfa.EventTOTPDeviceRemoved, "Remove", true, false},
		{mfa.EventChannelDeleted, "Delete", true, false},
		{mfa.EventSignInEnabled, "Update", false, false},
		{mfa.EventVerifySucceeded, "Accept", false, false},
		{mfa.EventVerifyFailed, "Reject", false, false},
		{mfa.EventVerifyLocked, "Block", false, false},
		{mfa.EventChannelCodeSent, "Announce", false, false},
		{mfa.EventWebAuthnFlagged, "Flag", false, false},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.event, func(t *testing.T) {
			seen[tt.as2] = true
			body, err := activity.EncodeEvent(sampleEvent(tt.event), 17)
			if err != nil {
				t.Fatal(err)
			}
			doc := decode(t, body)
			want := map[string]any{
				"@context":   "https://www.w3.org/ns/activitystreams",
				"id":         "urn:uuid:6f1c1f5e-8a8b-4c39-9b0e-3f4e6d2a1b7c",
				"type":       tt.as2,
				"summary":    "alice: " + mfa.EventCatalogue[tt.event].When,
				"actor":      map[string]any{"type": "Person", "id": "alice"},
				"object":     map[string]any{"type": "TOTPDevice", "id": "42", "name": "Phone"},
				"instrument": map[string]any{"type": "Service", "name": "mobile"},
				"generator":  map[string]any{"type": "Application", "id": "bank-app"},
				"published":  "2025-03-04T04:06:07.891Z",
				"mfa:event":  tt.event,
				"mfa:seq":    float64(17),
				"mfa:user":   "alice",
			}
			methods := map[string]any{"type": "Collection", "id": "urn:mfad:user:alice:methods"}
			if tt.origin {
				want["origin"] = methods
			}
			if tt.target {
				want["target"] = methods
			}
			if !reflect.DeepEqual(doc, want) {
				t.Fatalf("event body\n got %s\nwant %v", body, want)
			}
			if !strings.HasPrefix(string(body), `{"@context":`) {
				t.Fatalf("@context is not the first member: %s", body)
			}
		})
	}
	// Every AS2 type of the catalogue is covered by the table.
	for typ, kind := range mfa.EventCatalogue {
		if !seen[kind.AS2Type] {
			t.Errorf("AS2 type %s (of %s) has no row in the table", kind.AS2Type, typ)
		}
	}
}

// TestEncodeEventEmitsOnlyDocumentedMembers encodes every event type of the catalogue,
// with and without detail, and refuses any member that is neither in API.md §4 nor an
// mfa: extension. It cannot prove that no detail value is a secret, but it proves the
// encoder adds nothing on its own.
func TestEncodeEventEmitsOnlyDocumentedMembers(t *testing.T) {
	for typ := range mfa.EventCatalogue {
		for _, detail := range []map[string]any{nil, {"method": "totp", "attempts": 3, "reason_code": "x"}} {
			ev := sampleEvent(typ)
			ev.Detail = detail
			body, err := activity.EncodeEvent(ev, 1)
			if err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
			doc := decode(t, body)
			for k := range doc {
				if !documented[k] && !strings.HasPrefix(k, activity.ExtensionPrefix) {
					t.Errorf("%s: undocumented member %q in %s", typ, k, body)
				}
			}
			for k := range detail {
				if _, ok := doc["mfa:"+k]; !ok {
					t.Errorf("%s: detail %s missing in %s", typ, k, body)
				}
			}
		}
	}
}

func TestEncodeEventOmitsUnknownInstrumentAndGenerator(t *testing.T) {
	ev := sampleEvent(mfa.EventSignInDisabled)
	ev.Source, ev.EntryPoint = "", ""
	ev.Actor = "admin-7"
	ev.UserID = "bob/1"
	body, err := activity.EncodeEvent(ev, 3)
	if err != nil {
		t.Fatal(err)
	}
	doc := decode(t, body)
	for _, k := range []string{"instrument", "generator", "origin", "target"} {
		if _, ok := doc[k]; ok {
			t.Errorf("%s present: %s", k, body)
		}
	}
	if doc["summary"] != "admin-7 for bob/1: "+mfa.EventCatalogue[mfa.EventSignInDisabled].When {
		t.Errorf("summary = %q", doc["summary"])
	}
	ev.Type = mfa.EventAdminReset
	body, _ = activity.EncodeEvent(ev, 3)
	if got := decode(t, body)["origin"].(map[string]any)["id"]; got != "urn:mfad:user:bob%2F1:methods" {
		t.Errorf("origin id = %v, want the user id escaped", got)
	}
}

func TestEncodeEventRefusesBadInput(t *testing.T) {
	tests := map[string]func(*mfa.Event){
		"unknown type":        func(e *mfa.Event) { e.Type = "totp.exploded" },
		"id not a UUID":       func(e *mfa.Event) { e.ID = "event-1" },
		"id upper case":       func(e *mfa.Event) { e.ID = "6F1C1F5E-8A8B-4C39-9B0E-3F4E6D2A1B7C" },
		"id empty":            func(e *mfa.Event) { e.ID = "" },
		"detail overwrites":   func(e *mfa.Event) { e.Detail = map[string]any{"seq": 99} },
		"detail user":         func(e *mfa.Event) { e.Detail = map[string]any{"user": "mallory"} },
		"detail key quoted":   func(e *mfa.Event) { e.Detail = map[string]any{`a","type":"x`: 1} },
		"detail key empty":    func(e *mfa.Event) { e.Detail = map[string]any{"": 1} },
		"detail not JSONable": func(e *mfa.Event) { e.Detail = map[string]any{"ch": make(chan int)} },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			ev := sampleEvent(mfa.EventVerifyFailed)
			mutate(&ev)
			if body, err := activity.EncodeEvent(ev, 1); err == nil {
				t.Fatalf("encoded: %s", body)
			}
		})
	}
}

func TestEncodeEventIsDeterministic(t *testing.T) {
	ev := sampleEvent(mfa.EventVerifyFailed)
	ev.Detail = map[string]any{"zeta": 1, "alpha": "a", "method": "totp", "attempts": 2}
	first, err := activity.EncodeEvent(ev, 9)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, _ := activity.EncodeEvent(ev, 9)
		if string(again) != string(first) {
			t.Fatalf("encodings differ:\n%s\n%s", first, again)
		}
	}
	keys := []string{}
	dec := json.NewDecoder(strings.NewReader(string(first)))
	dec.Token() // {
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var skip json.RawMessage
		dec.Decode(&skip)
	}
	tail := keys[len(keys)-4:]
	if !slices.IsSorted(tail) || tail[0] != "mfa:alpha" {
		t.Fatalf("detail members not last and sorted: %v", keys)
	}
}

func BenchmarkEncodeEvent(b *testing.B) {
	ev := sampleEvent(mfa.EventTOTPDeviceRemoved)
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := activity.EncodeEvent(ev, 123456); err != nil {
				b.Fatal(err)
			}
		}
	})
	ev.Detail = map[string]any{"method": "totp", "remaining": 3}
	b.Run("detail", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := activity.EncodeEvent(ev, 123456); err != nil {
				b.Fatal(err)
			}
		}
	})
}
