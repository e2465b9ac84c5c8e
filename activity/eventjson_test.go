package activity

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
)

// awkward are strings encoding/json escapes: HTML characters, the JavaScript line
// separators, control characters, quotes, invalid UTF-8, and text beyond ASCII.
var awkward = []string{"", "plain", `<script>&"quote"\back</script>`, "line\u2028sep\u2029", "tab\tnew\nline\x01",
	"bad\xffutf8", "café ☕ 😀", "a/b?c d", "\x7f"}

// TestAS2EventEncodingIsMarshal: the hand-written encoder writes what json.Marshal
// writes for every event type of the catalogue, with and without the optional members,
// over awkward strings in every field.
func TestAS2EventEncodingIsMarshal(t *testing.T) {
	n := 0
	for typ, kind := range mfa.EventCatalogue {
		for i, s := range awkward {
			ev := mfa.Event{ID: "0a1b2c3d-0000-4000-8000-00000000000" + string(rune('0'+i%10)), Type: typ,
				UserID: s, Actor: awkward[(i+1)%len(awkward)], Object: mfa.EventObject{Type: s, ID: awkward[(i+2)%len(awkward)], Name: s},
				Time: time.Date(2026, 11, 30, 5, 30, i, 123456789, time.FixedZone("", 3600*i))}
			if i%2 == 0 {
				ev.Source, ev.EntryPoint = s, awkward[(i+3)%len(awkward)]
			}
			doc := newAS2Event(ev, int64(i)-3, kind)
			checkAS2Event(t, doc)
			n++
		}
	}
	if n < 20 {
		t.Fatalf("only %d events encoded", n)
	}
}

func checkAS2Event(t *testing.T, doc as2Event) {
	t.Helper()
	want, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if got := doc.appendJSON([]byte("prefix")); !bytes.Equal(got[len("prefix"):], want) || string(got[:6]) != "prefix" {
		t.Fatalf("appendJSON:\n%s\njson.Marshal:\n%s", got, want)
	}
}

func FuzzAS2EventEncoding(f *testing.F) {
	for i, s := range awkward {
		f.Add(s, awkward[(i+1)%len(awkward)], awkward[(i+2)%len(awkward)], int64(i-4), uint8(i))
	}
	f.Fuzz(func(t *testing.T, a, b, c string, seq int64, optional uint8) {
		doc := as2Event{Context: a, ID: b, Type: c, Summary: a + b, Actor: as2Ref{Type: b, ID: c, Name: a},
			Object: mfa.EventObject{Type: c, ID: a, Name: b}, Published: c, Event: a, Seq: seq, User: b}
		for i, ref := range []**as2Ref{&doc.Origin, &doc.Target, &doc.Instrument, &doc.Generator} {
			if optional&(1<<i) != 0 {
				*ref = &as2Ref{Type: a, ID: []string{"", b}[i%2], Name: []string{c, ""}[i%2]}
			}
		}
		checkAS2Event(t, doc)
	})
}
