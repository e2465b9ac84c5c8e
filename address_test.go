package mfa

import "testing"

func TestValidPhone(t *testing.T) {
	for s, want := range map[string]bool{
		"+34600111222": true, "+14155550123": true, "+441234567890123": true,
		"34600111222": false, "+0600111222": false, "+3460011": false, "+3460011122233344": false,
		"+34 600 111 222": false, "+34-600111222": false, "": false, "+": false,
	} {
		if got := ValidPhone(s); got != want {
			t.Errorf("ValidPhone(%q) = %v", s, got)
		}
	}
}

func TestValidEmail(t *testing.T) {
	for s, want := range map[string]bool{
		"alice@example.com": true, "a.b+tag@mail.example.co.uk": true, "ñandú@example.es": true,
		"x@xn--bcher-kva.example": true, "alice@EXAMPLE.COM": true, "Alice@Example.Com": true,
		"alice@example.xn--p1ai": true, "alice@example.xn--": false, "alice@example.xn--abc-": false,
		"alice@example": false, "alice@localhost": false, "Alice <alice@example.com>": false,
		"@example.com": false, "alice@": false, "alice@exa mple.com": false, "alice@example.c0m": false,
		"0@\ufffd.0": false, "a@b.0": false, "alice@-example.com": false, "alice@example..com": false,
		"\xff@example.com": false, "": false,
	} {
		if got := ValidEmail(s); got != want {
			t.Errorf("ValidEmail(%q) = %v", s, got)
		}
	}
}

func TestCanonicalAddress(t *testing.T) {
	for _, tc := range []struct {
		kind    Kind
		in, out string
	}{
		{KindEmail, "Alice@Example.COM", "Alice@example.com"},
		{KindEmail, "alice@example.com", "alice@example.com"},
		{KindSMS, "+34600111222", "+34600111222"},
	} {
		if got := CanonicalAddress(tc.kind, tc.in); got != tc.out {
			t.Errorf("CanonicalAddress(%s, %q) = %q, want %q", tc.kind, tc.in, got, tc.out)
		}
	}
}
