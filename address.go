package mfa

import (
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"
)

// e164 is an international phone number (ITU-T E.164): a plus, a country code that does
// not start with 0, and at most 15 digits in all; fewer than 8 is no real subscriber.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

// ValidPhone reports whether s is an E.164 phone number.
func ValidPhone(s string) bool { return e164.MatchString(s) }

// ValidEmail reports whether s is a bare e-mail address (RFC 5322 addr-spec, no display
// name) of at most 254 characters whose domain is a DNS host name: ASCII labels (an
// internationalized domain in its xn-- form), in any case.
func ValidEmail(s string) bool {
	if len(s) > 254 || !utf8.ValidString(s) {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && hostname.MatchString(s[at+1:])
}

// hostname is a DNS name of at least two labels, each 1–63 letters, digits and inner
// hyphens, ending in a top-level domain of letters or an internationalized one in its
// xn-- form; DNS names ignore case.
var hostname = regexp.MustCompile(`^(?i)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9](?:[a-z0-9-]{0,57}[a-z0-9])?)$`)

// CanonicalAddress is the form an address is kept and compared in: an e-mail address
// with its domain in lower case (DNS ignores case; the local part is the mail server's
// business and stays as given), a phone number as it is.
func CanonicalAddress(kind Kind, s string) string {
	if kind != KindEmail {
		return s
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return s
	}
	return s[:at+1] + strings.ToLower(s[at+1:])
}

// ValidAddress checks an address for a channel kind.
func ValidAddress(kind Kind, s string) bool {
	switch kind {
	case KindSMS:
		return ValidPhone(s)
	case KindEmail:
		return ValidEmail(s)
	}
	return false
}
