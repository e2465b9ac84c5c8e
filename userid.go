package mfa

import (
	"unicode"
	"unicode/utf8"
)

// ValidUserID is the rule for every user id, wherever a command comes from: 1 to 128
// characters (not bytes) of valid UTF-8, none of them a control or format character (Cc, Cf: the bidi overrides U+202A–U+202E and isolates
// U+2066–U+2069, the marks U+200E/U+200F, zero-width characters), a line or paragraph
// separator, or U+FFFD (what a decoder made of bytes that were not UTF-8). User ids are
// shown to administrators and written to logs and events: a right-to-left override
// could make one id read as another, a newline forge a log line.
func ValidUserID(s string) bool {
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > 128 {
		return false
	}
	for _, r := range s {
		if r == utf8.RuneError || unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) {
			return false
		}
	}
	return true
}
