package mfa

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// checkEncodeData compares EncodeData with json.Marshal: the same bytes, or both fail.
func checkEncodeData(t *testing.T, v any) {
	t.Helper()
	want, werr := json.Marshal(v)
	got, gerr := EncodeData(v)
	if (werr != nil) != (gerr != nil) || string(got) != string(want) {
		t.Errorf("EncodeData(%+v)\n got %s (%v)\nwant %s (%v)", v, got, gerr, want, werr)
	}
}

// fill sets every field of the struct v points to, so that a field added to Reply,
// Status or Method but not to its encoder fails here rather than vanishing from replies.
func fill(t *testing.T, v reflect.Value) {
	at := time.Date(2026, 11, 30, 1, 2, 3, 456789000, time.FixedZone("", 5*3600+30*60))
	for i := range v.NumField() {
		f := v.Field(i)
		switch {
		case f.Type() == reflect.TypeFor[time.Time]():
			f.Set(reflect.ValueOf(at))
		case f.Type() == reflect.TypeFor[*time.Time]():
			later := at.Add(time.Duration(i) * time.Hour)
			f.Set(reflect.ValueOf(&later))
		case f.Type() == reflect.TypeFor[json.RawMessage]():
			f.Set(reflect.ValueOf(json.RawMessage(`{"n":1}`)))
		case f.Type() == reflect.TypeFor[[]Method]():
			var m Method
			fill(t, reflect.ValueOf(&m).Elem())
			f.Set(reflect.ValueOf([]Method{m, m}))
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
		case f.Kind() == reflect.String:
			f.SetString(v.Type().Field(i).Name)
		case f.CanInt():
			f.SetInt(int64(i + 1))
		default:
			t.Fatalf("field %s of %s: teach this test and the encoder about it", v.Type().Field(i).Name, v.Type())
		}
	}
}

func TestEncodeDataEveryField(t *testing.T) {
	var s Status
	fill(t, reflect.ValueOf(&s).Elem())
	checkEncodeData(t, s)
	var d Devices
	fill(t, reflect.ValueOf(&d).Elem())
	checkEncodeData(t, d)
}

// TestEncodeDataMatchesMarshal: the hand-written encodings are json.Marshal's, byte
// for byte, and fail where it fails.
func TestEncodeDataMatchesMarshal(t *testing.T) {
	at := time.UnixMilli(1764464523123).UTC()
	local := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("", -7*3600))
	tooLate := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	oddZone := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("", 25*3600))
	yearZero := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	lastYear := time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	beforeZero := time.Date(-1, 12, 31, 0, 0, 0, 0, time.UTC)
	dayAhead := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("", 24*3600))
	dayBehind := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("", -24*3600))
	almostDay := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("", -24*3600+1))
	full := Method{ID: 7, Kind: KindSMS, Label: "Phone <work> & \"home\"", Destination: "+34 *** *** 123",
		Verified: true, Voluntary: true, Primary: true, EntryPoint: "web", CreatedAt: at, VerifiedAt: &local, LastUsedAt: &at}
	for _, v := range []any{
		Status{},
		Status{UserID: "alice", Methods: []Method{}},
		Status{UserID: "ünïcode\u2028\xff", SignInEnabled: true, Methods: []Method{full, {ID: 1, Kind: KindTOTP}},
			BackupCodesRemaining: 9, BackupCodesTotal: 10, LockedUntil: &local, FailedAttempts: 3},
		Status{UserID: "b", BackupCodesRemaining: -1},
		Status{Methods: []Method{{CreatedAt: tooLate}}},
		Status{LockedUntil: &oddZone},
		Status{LockedUntil: &yearZero}, Status{LockedUntil: &lastYear}, Status{LockedUntil: &beforeZero},
		Status{LockedUntil: &dayAhead}, Status{LockedUntil: &dayBehind}, Status{LockedUntil: &almostDay},
		Devices{Devices: []Method{{VerifiedAt: &beforeZero}}},
		Devices{},
		Devices{Devices: []Method{}},
		Devices{Devices: []Method{full, full}},
		Devices{Devices: []Method{{LastUsedAt: &tooLate}}},
		Removal{Removed: 2},
		map[string]any{"n": 1},
	} {
		checkEncodeData(t, v)
	}
}

// FuzzEncodeData compares with json.Marshal on any strings, numbers and times.
func FuzzEncodeData(f *testing.F) {
	f.Add("alice", "totp", "Phone", "", "web", int64(1), true, 10, int64(1764464523123456789), 0, true)
	f.Add("\xff<&>", "sms\u2029", "\"q\"", "+1 ***", "", int64(-3), false, -1, int64(-62135596800000000), 3600*5+1800, false)
	f.Fuzz(func(t *testing.T, user, kind, label, dest, entry string, id int64, flag bool, n int, ns int64, offset int, withTimes bool) {
		at := time.Unix(0, ns).In(time.FixedZone("", offset%(30*3600)))
		m := Method{ID: id, Kind: Kind(kind), Label: label, Destination: dest, Verified: flag, Voluntary: !flag,
			Primary: flag, EntryPoint: entry, CreatedAt: at}
		s := Status{UserID: user, SignInEnabled: flag, Methods: []Method{m}, BackupCodesRemaining: n,
			BackupCodesTotal: n + 1, FailedAttempts: -n}
		if withTimes {
			m.VerifiedAt, m.LastUsedAt = &at, &at
			s.Methods, s.LockedUntil = append(s.Methods, m), &at
		}
		checkEncodeData(t, s)
		checkEncodeData(t, Devices{Devices: s.Methods})
	})
}
