package mfa

import (
	"encoding/json"
	"strconv"
	"time"
)

// EncodeData encodes a reply's data as json.Marshal does. The data of the reads run
// most (Status, Devices) is written by hand, byte for byte what json.Marshal writes
// (TestEncodeDataMatchesMarshal, FuzzEncodeData): reflection over those structs was a
// tenth of a status request's CPU, counting the API's answer, which encodes the same
// fields again (handlers). Anything else goes to json.Marshal.
func EncodeData(v any) ([]byte, error) {
	var (
		b  []byte
		ok bool
	)
	switch d := v.(type) {
	case Status:
		b, ok = d.appendJSON(make([]byte, 0, 256+200*len(d.Methods)))
	case Devices:
		b, ok = d.appendJSON(make([]byte, 0, 16+200*len(d.Devices)))
	}
	if ok {
		return b, nil
	}
	return json.Marshal(v)
}

// The appenders below report false when json.Marshal would fail (a time it cannot
// write), so that EncodeData hands the value to it and its error stands.

func (s Status) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"user_id":`...)
	b = AppendJSONString(b, s.UserID)
	b = append(b, `,"signin_enabled":`...)
	b = strconv.AppendBool(b, s.SignInEnabled)
	b = append(b, `,"methods":`...)
	b, ok := AppendJSONList(b, s.Methods, Method.appendJSON)
	if !ok {
		return b, false
	}
	b = append(b, `,"backup_codes_remaining":`...)
	b = strconv.AppendInt(b, int64(s.BackupCodesRemaining), 10)
	b = append(b, `,"backup_codes_total":`...)
	b = strconv.AppendInt(b, int64(s.BackupCodesTotal), 10)
	if s.LockedUntil != nil {
		b = append(b, `,"locked_until":`...)
		if b, ok = AppendJSONTime(b, *s.LockedUntil); !ok {
			return b, false
		}
	}
	b = append(b, `,"failed_attempts":`...)
	b = strconv.AppendInt(b, int64(s.FailedAttempts), 10)
	return append(b, '}'), true
}

func (d Devices) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"devices":`...)
	b, ok := AppendJSONList(b, d.Devices, Method.appendJSON)
	return append(b, '}'), ok
}

func (m Method) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, m.ID, 10)
	b = append(b, `,"kind":`...)
	b = AppendJSONString(b, string(m.Kind))
	b = append(b, `,"label":`...)
	b = AppendJSONString(b, m.Label)
	b = AppendJSONField(b, "destination", m.Destination)
	b = append(b, `,"verified":`...)
	b = strconv.AppendBool(b, m.Verified)
	b = append(b, `,"voluntary":`...)
	b = strconv.AppendBool(b, m.Voluntary)
	b = append(b, `,"primary":`...)
	b = strconv.AppendBool(b, m.Primary)
	b = AppendJSONField(b, "entry_point", m.EntryPoint)
	b = append(b, `,"created_at":`...)
	b, ok := AppendJSONTime(b, m.CreatedAt)
	if !ok {
		return b, false
	}
	if m.VerifiedAt != nil {
		b = append(b, `,"verified_at":`...)
		if b, ok = AppendJSONTime(b, *m.VerifiedAt); !ok {
			return b, false
		}
	}
	if m.LastUsedAt != nil {
		b = append(b, `,"last_used_at":`...)
		if b, ok = AppendJSONTime(b, *m.LastUsedAt); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

// AppendJSONList appends list as json.Marshal writes a slice, each element written by
// elem: nil as null, empty as []. It stops at the first element elem cannot write and
// reports false.
func AppendJSONList[T any](b []byte, list []T, elem func(T, []byte) ([]byte, bool)) ([]byte, bool) {
	if list == nil {
		return append(b, "null"...), true
	}
	b = append(b, '[')
	for i, v := range list {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = elem(v, b); !ok {
			return b, false
		}
	}
	return append(b, ']'), true
}

// AppendJSONTime appends t as time.Time's MarshalJSON writes it (RFC 3339 with
// nanoseconds, quoted). It reports false, and appends nothing, where MarshalJSON
// fails: a year outside 0–9999, or a zone offset of 24 hours or more.
func AppendJSONTime(b []byte, t time.Time) ([]byte, bool) {
	_, offset := t.Zone()
	if y := t.Year(); y < 0 || y > 9999 || offset/3600 >= 24 || offset/3600 <= -24 {
		return b, false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), true
}
