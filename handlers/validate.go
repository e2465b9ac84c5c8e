package handlers

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	mfa "github.com/mfad/mfad"
)

// Request checks shared by the dialects. They check shape only; every rule about state
// is the workers'.

// checkOTP checks a one-time code's shape: 6 or 8 digits (the TOTP profiles we issue).
func checkOTP(field, code string) error {
	if code == "" {
		return mfa.Invalid(field, mfa.ReasonRequired)
	}
	if (len(code) != 6 && len(code) != 8) || strings.Trim(code, "0123456789") != "" {
		return mfa.Invalid(field, mfa.ReasonFormat)
	}
	return nil
}

// checkLabel checks a user-given name: 1 to max characters, none of them a control
// character, a bidirectional embedding, override or isolate (U+202A–U+202E,
// U+2066–U+2069: they reorder what a device list shows, so one name can pass for
// another), a line or paragraph separator, or U+FFFD (what a lone surrogate escaped in
// the JSON becomes). The marks U+200E, U+200F and U+061C, which right-to-left names
// carry, are fine.
func checkLabel(field string, v *string, max int) (string, error) {
	if v == nil || strings.TrimSpace(*v) == "" {
		return "", mfa.Invalid(field, mfa.ReasonRequired)
	}
	s := strings.TrimSpace(*v)
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return "", mfa.Invalid(field, mfa.ReasonLength)
	}
	if strings.IndexFunc(s, unsafeInLabel) >= 0 {
		return "", mfa.Invalid(field, mfa.ReasonFormat)
	}
	return s, nil
}

func unsafeInLabel(r rune) bool {
	return r == utf8.RuneError || unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp) ||
		'\u202a' <= r && r <= '\u202e' || '\u2066' <= r && r <= '\u2069'
}

// parseID reads a method id from a path: a base-10 integer written as mfad writes ids
// (no plus sign, no leading zeros, so one device has one path), else 400.
func parseID(field, s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || strconv.FormatInt(id, 10) != s {
		return 0, mfa.Malformed(field, mfa.ReasonType)
	}
	return id, nil
}

// checkUserID checks a user id given in a path or body: the rule of a token's sub.
func checkUserID(field, s string) error {
	if !mfa.ValidUserID(s) {
		return mfa.Invalid(field, mfa.ReasonFormat)
	}
	return nil
}

// actingFor is the user a request acts for: the caller, or with the admin scope the
// user_id it names. Anyone else naming another user is refused.
func actingFor(p Principal, userID *string) (string, error) {
	if userID == nil || *userID == p.Subject {
		return "", nil
	}
	if err := checkUserID("user_id", *userID); err != nil {
		return "", err
	}
	if !p.Admin() {
		return "", mfa.ErrForbidden
	}
	return *userID, nil
}

// checkCodeLength narrows checkOTP to this deployment: 8-digit codes only when 8-digit
// TOTP is configured (an SMS/e-mail code is always 6), so a client sending the wrong
// length gets 422 and no failed attempt is counted against the user.
func (s *server) checkCodeLength(field, code string) error {
	if len(code) == 8 && s.digits != 8 {
		return mfa.Invalid(field, mfa.ReasonFormat)
	}
	return nil
}
