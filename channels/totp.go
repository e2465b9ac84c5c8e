package channels

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"net/url"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
)

// TOTPPolicy is the RFC 6238 profile of new devices: what the otpauth URI announces and
// what codes are checked against. A device keeps the profile it was created with.
type TOTPPolicy struct {
	Issuer    string
	Algorithm otp.Algorithm
	Digits    otp.Digits
	Period    uint // seconds
}

// DefaultTOTPPolicy is what every authenticator app supports: SHA1, 6 digits, 30 s.
var DefaultTOTPPolicy = TOTPPolicy{Issuer: "mfad", Algorithm: otp.AlgorithmSHA1, Digits: otp.DigitsSix, Period: 30}

// secretSize is 160 bits: the HMAC-SHA1 block the RFC 4226 §4 recommends as minimum
// and what authenticator apps expect; more buys nothing against a 6-digit code.
const secretSize = 20

// skewSteps is how many time steps either side of now a code may come from (RFC 6238
// §5.2): one, for clocks and typing delay; more widens the guessing window.
const skewSteps = 1

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// newSecret returns a fresh base32 secret from crypto/rand.
func newSecret() string {
	b := make([]byte, secretSize)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b32.EncodeToString(b)
}

// totpParams is the profile of one device as stored with it.
type totpParams struct {
	Algorithm otp.Algorithm
	Digits    otp.Digits
	Period    uint
}

func (p TOTPPolicy) params() totpParams {
	return totpParams{Algorithm: p.Algorithm, Digits: p.Digits, Period: p.Period}
}

// uri is the otpauth key URI of API.md §0, in exactly its parameter order:
// otpauth://totp/<Issuer>:<account>?secret=…&issuer=…&algorithm=…&digits=…&period=…
func (p TOTPPolicy) uri(secret, account string, tp totpParams) string {
	return fmt.Sprintf("otpauth://totp/%s:%s?secret=%s&issuer=%s&algorithm=%s&digits=%d&period=%d",
		url.PathEscape(p.Issuer), url.PathEscape(account), secret, url.QueryEscape(p.Issuer),
		tp.Algorithm.String(), tp.Digits.Length(), tp.Period)
}

// step is the RFC 6238 time step of t.
func (tp totpParams) step(t time.Time) int64 {
	return t.Unix() / int64(tp.Period)
}

// code is the one-time code of a time step: HOTP (RFC 4226) over the step counter.
func (tp totpParams) code(secret string, step int64) (string, error) {
	return hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{
		Digits: tp.Digits, Algorithm: tp.Algorithm})
}

// match finds the time step within ±skewSteps of now whose code is code, preferring
// the latest when several match. It checks the steps itself, not with totp.Validate,
// because replay protection needs to know which step matched; every candidate is
// compared in constant time.
func (tp totpParams) match(secret, code string, now time.Time) (step int64, ok bool, err error) {
	if len(code) != tp.Digits.Length() {
		return 0, false, nil
	}
	current := tp.step(now)
	for s := current - skewSteps; s <= current+skewSteps; s++ {
		want, err := tp.code(secret, s)
		if err != nil {
			return 0, false, fmt.Errorf("compute TOTP code: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			step, ok = s, true
		}
	}
	return step, ok, nil
}

func algorithmName(a otp.Algorithm) string { return a.String() }

// ParseAlgorithm reads an RFC 6238 HMAC algorithm name: SHA1, SHA256 or SHA512.
func ParseAlgorithm(name string) (otp.Algorithm, error) {
	switch name {
	case "SHA1":
		return otp.AlgorithmSHA1, nil
	case "SHA256":
		return otp.AlgorithmSHA256, nil
	case "SHA512":
		return otp.AlgorithmSHA512, nil
	}
	return 0, fmt.Errorf("unknown TOTP algorithm %q", name)
}
