package mfa

import (
	"net/mail"
	"regexp"
)

// e164 is an international phone number (ITU-T E.164): a plus, a country code that does
// not start with 0, and at most 15 digits in all; fewer than 8 is no real subscriber.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

// ValidPhone reports whether s is an E.164 phone number.
func ValidPhone(s string) bool { return e164.MatchString(s) }

// ValidEmail reports whether s is a bare e-mail address (RFC 5322 addr-spec, no display
// name) of at most 254 characters with a dotted domain.
func ValidEmail(s string) bool {
	if len(s) > 254 {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return false
	}
	for i := len(s) - 1; i >= 0 && s[i] != '@'; i-- {
		if s[i] == '.' && i < len(s)-1 {
			return true
		}
	}
	return false
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
