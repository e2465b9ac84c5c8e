package channels

import (
	"fmt"
	"strings"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
)

func TestOrderMethods(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	at := func(minutes int) *time.Time { v := t0.Add(time.Duration(minutes) * time.Minute); return &v }
	// m: id, kind, created minute, verified minute (-1: no verification time recorded).
	m := func(id int64, kind mfa.Kind, created, verified int) mfa.Method {
		method := mfa.Method{ID: id, Kind: kind, CreatedAt: *at(created), Verified: true}
		if verified >= 0 {
			method.VerifiedAt = at(verified)
		}
		return method
	}
	tests := []struct {
		name    string
		methods []mfa.Method
		want    string // ids in order, the primary starred
	}{
		{"none", nil, ""},
		{"no TOTP device: no primary, newest first",
			[]mfa.Method{m(1, mfa.KindSMS, 0, 0), m(2, mfa.KindEmail, 5, 5)}, "2,1"},
		{"the TOTP device verified first leads, though created last",
			[]mfa.Method{m(1, mfa.KindTOTP, 0, 9), m(2, mfa.KindTOTP, 3, 4), m(3, mfa.KindSMS, 1, 1)}, "2*,3,1"},
		{"equal verification times: the smaller id is primary",
			[]mfa.Method{m(7, mfa.KindTOTP, 0, 2), m(4, mfa.KindTOTP, 1, 2)}, "4*,7"},
		{"equal creation times: the larger id first",
			[]mfa.Method{m(3, mfa.KindTOTP, 0, 0), m(5, mfa.KindSMS, 2, 2), m(9, mfa.KindEmail, 2, 2)}, "3*,9,5"},
		{"a device without a verification time sorts as verified earliest",
			[]mfa.Method{m(1, mfa.KindTOTP, 0, 1), m(2, mfa.KindTOTP, 1, -1)}, "2*,1"},
		{"a passkey is never primary",
			[]mfa.Method{m(1, mfa.KindWebAuthn, 0, 0), m(2, mfa.KindTOTP, 1, 1)}, "2*,1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orderMethods(tt.methods)
			var got []string
			for _, method := range tt.methods {
				s := fmt.Sprint(method.ID)
				if method.Primary {
					s += "*"
				}
				got = append(got, s)
			}
			if g := strings.Join(got, ","); g != tt.want {
				t.Fatalf("order %s, want %s", g, tt.want)
			}
		})
	}
}
