package channels

import (
	"testing"
	"unicode/utf8"

	mfa "github.com/mfad/mfad"
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
