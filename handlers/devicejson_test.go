package handlers

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	mfa "github.com/mfad/mfad"
)

// checkDeviceData compares appendJSON with json.Marshal: the same bytes, or both fail.
func checkDeviceData(t *testing.T, d deviceData) {
	t.Helper()
	want, werr := json.Marshal(d)
	got, ok := d.appendJSON(nil)
	if (werr == nil) != ok || ok && string(got) != string(want) {
		t.Errorf("appendJSON(%+v)\n got %s (%v)\nwant %s (%v)", d, got, ok, want, werr)
	}
}

// TestDeviceDataEveryField sets every field, so that a field added to one of these
// types but not to its appendJSON fails here.
func TestDeviceDataEveryField(t *testing.T) {
	at := time.Date(2026, 11, 30, 1, 2, 3, 456789000, time.FixedZone("", -3*3600))
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		for i := range v.NumField() {
			f := v.Field(i)
			switch {
			case f.Type() == reflect.TypeFor[time.Time]():
				f.Set(reflect.ValueOf(at))
			case f.Type() == reflect.TypeFor[*time.Time]():
				later := at.Add(time.Hour)
				f.Set(reflect.ValueOf(&later))
			case f.Kind() == reflect.Slice:
				e := reflect.New(f.Type().Elem()).Elem()
				fill(e)
				f.Set(reflect.Append(reflect.MakeSlice(f.Type(), 0, 2), e, e))
			case f.Kind() == reflect.Bool:
				f.SetBool(true)
			case f.Kind() == reflect.String:
				f.SetString(v.Type().Field(i).Name)
			case f.CanInt():
				f.SetInt(int64(i + 1))
			default:
				t.Fatalf("field %s of %s: teach this test and appendJSON about it", v.Type().Field(i).Name, v.Type())
			}
		}
	}
	var s statusData
	fill(reflect.ValueOf(&s).Elem())
	checkDeviceData(t, s)
	var l totpDevices
	fill(reflect.ValueOf(&l).Elem())
	checkDeviceData(t, l)
}

func TestDeviceDataMatchesMarshal(t *testing.T) {
	at := time.UnixMilli(1764464523123).UTC()
	tooLate := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	m := deviceMethod{ID: 3, Type: mfa.KindEmail, Name: "<Work> & \"mail\"\u2028", Destination: "a***@example.com",
		IsPrimary: true, CreatedAt: at, LastUsedAt: &at}
	d := totpDevice{ID: 9, DeviceName: "\xffphone", Type: mfa.KindTOTP, CreatedAt: at, Verified: true}
	for _, v := range []deviceData{
		statusData{},
		statusData{Methods: []deviceMethod{}},
		statusData{BackupCodesRemaining: 10, Enabled: true, Methods: []deviceMethod{m, {ID: 1}}},
		statusData{Methods: []deviceMethod{{CreatedAt: tooLate}}},
		statusData{Methods: []deviceMethod{{LastUsedAt: &tooLate}}},
		totpDevices{},
		totpDevices{Devices: []totpDevice{}},
		totpDevices{Devices: []totpDevice{d, d}, TotalCount: 2},
		totpDevices{Devices: []totpDevice{{LastUsedAt: &tooLate}}},
	} {
		checkDeviceData(t, v)
	}
}

// TestDeviceOKDataIsDeviceOK: the whole answer, headers and body, is deviceOK's, also
// with ?pretty and for data that cannot encode itself.
func TestDeviceOKDataIsDeviceOK(t *testing.T) {
	at := time.UnixMilli(1764464523123).UTC()
	data := statusData{BackupCodesRemaining: 4, Enabled: true, Methods: []deviceMethod{{ID: 1, Type: mfa.KindTOTP, CreatedAt: at}}}
	bad := statusData{Methods: []deviceMethod{{CreatedAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}}}
	e := echo.New()
	answer := func(target string, write func(echo.Context) error) (*httptest.ResponseRecorder, string) {
		rec := httptest.NewRecorder()
		if err := write(e.NewContext(httptest.NewRequest(http.MethodGet, target, nil), rec)); err != nil {
			return rec, err.Error()
		}
		return rec, ""
	}
	for _, tc := range []struct {
		target string
		data   deviceData
		debug  bool
	}{{"/", data, false}, {"/?pretty", data, false}, {"/", data, true}, {"/", totpDevices{Devices: []totpDevice{}}, false}, {"/", bad, false}} {
		e.Debug = tc.debug
		got, gerr := answer(tc.target, func(c echo.Context) error { return deviceOKData(c, tc.data, "Estado <MFA>") })
		want, werr := answer(tc.target, func(c echo.Context) error { return deviceOK(c, tc.data, "Estado <MFA>") })
		if got.Code != want.Code || !reflect.DeepEqual(got.Header(), want.Header()) || got.Body.String() != want.Body.String() || gerr != werr {
			t.Errorf("%s %+v:\n got %d %v %q %q\nwant %d %v %q %q", tc.target, tc.data, got.Code, got.Header(), got.Body, gerr,
				want.Code, want.Header(), want.Body, werr)
		}
	}
}

// FuzzDeviceData compares with json.Marshal on any strings, numbers and times.
func FuzzDeviceData(f *testing.F) {
	f.Add("totp", "Phone", "", int64(1), true, 10, int64(1764464523123456789), 0, true)
	f.Add("sms\u2029", "<&>\xff", "+1 ***", int64(-3), false, -1, int64(-62135596800000000), 3600*25, false)
	f.Fuzz(func(t *testing.T, kind, name, dest string, id int64, flag bool, n int, ns int64, offset int, used bool) {
		at := time.Unix(0, ns).In(time.FixedZone("", offset%(30*3600)))
		var last *time.Time
		if used {
			last = &at
		}
		m := deviceMethod{ID: id, Type: mfa.Kind(kind), Name: name, Destination: dest, IsPrimary: flag,
			Voluntary: !flag, CreatedAt: at, LastUsedAt: last}
		checkDeviceData(t, statusData{BackupCodesRemaining: n, Enabled: flag, Methods: []deviceMethod{m, m}})
		d := totpDevice{ID: id, DeviceName: name, Type: mfa.Kind(kind), CreatedAt: at, LastUsedAt: last,
			IsPrimary: flag, Verified: !flag}
		checkDeviceData(t, totpDevices{Devices: []totpDevice{d}, TotalCount: n})
	})
}
