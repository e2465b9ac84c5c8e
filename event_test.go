package mfa

import (
	"os"
	"strings"
	"testing"
)

// TestEventCatalogueInREADME keeps the README's event table true to EventCatalogue.
func TestEventCatalogueInREADME(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, line := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(line, "| `mfa.events.") {
			rows++
		}
	}
	if rows != len(EventCatalogue) {
		t.Errorf("README lists %d events, the catalogue %d", rows, len(EventCatalogue))
	}
	for typ, kind := range EventCatalogue {
		row := "| `mfa.events." + typ + "` | " + kind.AS2Type + " | " + kind.When + " |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README has no row %s", row)
		}
	}
}

// TestEventSummariesAreForPeople: When is the summary a feed shows; how to read an
// event's members is the docs' business (README, under the table).
func TestEventSummariesAreForPeople(t *testing.T) {
	for typ, kind := range EventCatalogue {
		if strings.Contains(kind.When, "mfa:") || strings.ContainsAny(kind.When, "`") {
			t.Errorf("the summary of %s names a member of the event: %q", typ, kind.When)
		}
	}
}

func TestLang(t *testing.T) {
	for header, want := range map[string]string{
		"": "en", "es": "es", "es-ES": "es", "ES": "es", "en-US,es;q=0.9": "en", "fr, es;q=0.5": "es",
		"es;q=0": "en", "de": "en", "es;q=abc, en;q=0.3": "en", "en;q=0.2, es-MX;q=0.8": "es",
	} {
		if got := Lang(header); got != want {
			t.Errorf("Lang(%q) = %s, want %s", header, got, want)
		}
	}
}

func TestEveryOutcomeHasBothLanguages(t *testing.T) {
	for key, texts := range catalogue {
		if texts[0] == "" || texts[1] == "" {
			t.Errorf("%s lacks a text", key)
		}
	}
	for _, code := range []string{CodeValidation, CodeInvalidCode, CodeTooManyAttempts, CodeDeviceNotFound,
		CodeChannelNotVoluntary, CodeKeyReused, CodeNoTOTPDevice, CodeMethodNotAllowed} {
		if _, ok := catalogue[code]; !ok {
			t.Errorf("no message for %s", code)
		}
	}
}
