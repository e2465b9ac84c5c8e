package channels

import "github.com/pquerna/otp"

// TOTPPolicy is the RFC 6238 profile of new devices: what the otpauth URI announces and
// what codes are checked against.
type TOTPPolicy struct {
	Issuer    string
	Algorithm otp.Algorithm
	Digits    otp.Digits
	Period    uint // seconds
}

// DefaultTOTPPolicy is what every authenticator app supports: SHA1, 6 digits, 30 s.
var DefaultTOTPPolicy = TOTPPolicy{Issuer: "mfad", Algorithm: otp.AlgorithmSHA1, Digits: otp.DigitsSix, Period: 30}
