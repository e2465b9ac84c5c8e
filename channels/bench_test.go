package channels

import (
	"testing"
	"time"
)

// BenchmarkTOTPMatch is the code check alone: three HMAC steps, constant-time compares.
func BenchmarkTOTPMatch(b *testing.B) {
	tp := DefaultTOTPPolicy.params()
	secret := newSecret()
	now := time.Unix(1_700_000_000, 0)
	code, _ := tp.code(secret, tp.step(now))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, _ := tp.match(secret, code, now); !ok {
			b.Fatal("refused")
		}
	}
}
