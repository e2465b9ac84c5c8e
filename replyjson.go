package mfa

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends r encoded exactly as json.Marshal encodes it, given that r.Data is
// compact JSON (what json.Marshal makes, and what a reply decoded from such bytes holds).
// r.Data is copied as it is: invalid JSON there makes invalid output, where json.Marshal
// would fail. Workers only ever set it from json.Marshal or from a stored reply.
// json.Marshal validates and compacts a RawMessage again on every call, which was a
// tenth of a worker's CPU on a status read; every reply passes here.
func (r Reply) AppendJSON(b []byte) []byte {
	b = append(b, `{"ok":`...)
	b = strconv.AppendBool(b, r.OK)
	b = AppendJSONField(b, "code", r.Code)
	b = AppendJSONField(b, "message", r.Message)
	b = AppendJSONField(b, "field", r.Field)
	b = AppendJSONField(b, "reason", r.Reason)
	if r.RetryAfter != 0 {
		b = append(b, `,"retry_after":`...)
		b = strconv.AppendInt(b, int64(r.RetryAfter), 10)
	}
	if r.Replayed {
		b = append(b, `,"replayed":true`...)
	}
	if len(r.Data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, r.Data...)
	}
	return append(b, '}')
}

// AppendJSONField appends ,"name":"value" unless value is empty (omitempty).
func AppendJSONField(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return AppendJSONString(b, value)
}

// AppendJSONString quotes s as encoding/json does. Text that needs no escaping (the
// usual case: codes, English and Spanish messages) is copied as it is; anything else
// is left to encoding/json, so its escaping rules (HTML characters, U+2028 and U+2029,
// invalid UTF-8) hold without being written twice.
func AppendJSONString(b []byte, s string) []byte {
	if plainJSON(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}

// plainJSON reports whether json.Marshal would write s between quotes unchanged.
func plainJSON(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			return false
		}
		i += size
	}
	return true
}
