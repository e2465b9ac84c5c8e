package mfa

import (
	"strings"
	"unicode/utf8"
)

// MaskAddress hides most of a phone number or e-mail address, for events, logs and
// lists: +34600111222 → +34******222, alice@example.com → a****@example.com. The
// workers and the gateway both use it, so an address reads the same everywhere.
func MaskAddress(kind Kind, addr string) string {
	if kind == KindEmail {
		local, domain, ok := strings.Cut(addr, "@")
		if !ok || local == "" {
			return "****"
		}
		// The first character, not the first byte: a UTF-8 local part (ñame@…) would
		// leave half a rune, an invalid string, in every event and list.
		first, size := utf8.DecodeRuneInString(local)
		return string(first) + strings.Repeat("*", max(utf8.RuneCountInString(local[size:]), 3)) + "@" + domain
	}
	if len(addr) <= 6 {
		return strings.Repeat("*", len(addr))
	}
	return addr[:3] + strings.Repeat("*", len(addr)-6) + addr[len(addr)-3:]
}
