package channels

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pquerna/otp"
)

// vectors is testdata/otp-vectors.json, a copy of ../shared/testdata/otp-vectors.json:
// RFC 4226 Appendix D and RFC 6238 Appendix B, checked against an independent
// implementation. The copy keeps the test independent of the checkout layout.
type vectors struct {
	HOTP struct {
		Secret  string `json:"secret_ascii"`
		Digits  int    `json:"digits"`
		Vectors []struct {
			Counter int64  `json:"counter"`
			OTP     string `json:"otp"`
		} `json:"vectors"`
	} `json:"hotp"`
	TOTP []struct {
		Time      int64  `json:"time"`
		Algorithm string `json:"algorithm"`
		Secret    string `json:"secret_ascii"`
		Digits    int    `json:"digits"`
		Period    uint   `json:"period"`
		OTP       string `json:"otp"`
	} `json:"totp"`
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "otp-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.HOTP.Vectors) != 10 || len(v.TOTP) != 18 {
		t.Fatalf("vector file incomplete: %d HOTP, %d TOTP", len(v.HOTP.Vectors), len(v.TOTP))
	}
	return v
}

func TestRFC4226Vectors(t *testing.T) {
	v := loadVectors(t)
	tp := totpParams{Algorithm: otp.AlgorithmSHA1, Digits: otp.Digits(v.HOTP.Digits), Period: 30}
	secret := b32.EncodeToString([]byte(v.HOTP.Secret))
	for _, c := range v.HOTP.Vectors {
		got, err := tp.code(secret, c.Counter)
		if err != nil || got != c.OTP {
			t.Errorf("counter %d: got %q (%v), want %q", c.Counter, got, err, c.OTP)
		}
	}
}

func TestRFC6238Vectors(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.TOTP {
		t.Run(c.Algorithm+"/"+strconv.FormatInt(c.Time, 10), func(t *testing.T) {
			alg, err := ParseAlgorithm(c.Algorithm)
			if err != nil {
				t.Fatal(err)
			}
			tp := totpParams{Algorithm: alg, Digits: otp.Digits(c.Digits), Period: c.Period}
			secret := b32.EncodeToString([]byte(c.Secret))
			now := time.Unix(c.Time, 0)
			// The code the device shows now is accepted, at the step of now.
			step, ok, err := tp.match(secret, c.OTP, now)
			if err != nil || !ok || step != c.Time/int64(c.Period) {
				t.Fatalf("match at %d: step %d ok %v err %v", c.Time, step, ok, err)
			}
			// One step of skew either way is tolerated, two are not.
			for _, d := range []struct {
				offset int64
				ok     bool
			}{{-30, true}, {30, true}, {-60, false}, {60, false}} {
				if c.Time+d.offset < 0 {
					continue // before 1970: no time step to speak of
				}
				_, ok, _ := tp.match(secret, c.OTP, now.Add(time.Duration(d.offset)*time.Second))
				if ok != d.ok {
					t.Errorf("skew %+ds: accepted %v, want %v", d.offset, ok, d.ok)
				}
			}
		})
	}
}

func TestMatchRefusesMalformedCodes(t *testing.T) {
	tp := DefaultTOTPPolicy.params()
	secret := newSecret()
	now := time.Unix(1_700_000_000, 0)
	good, _ := tp.code(secret, tp.step(now))
	for _, code := range []string{"", good[:5], good + "0", "abcdef", "12345678"} {
		if _, ok, _ := tp.match(secret, code, now); ok {
			t.Errorf("code %q accepted", code)
		}
	}
	if _, ok, _ := tp.match(secret, good, now); !ok {
		t.Fatal("the current code is refused")
	}
}

func TestSecretsAre160BitBase32(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s := newSecret()
		raw, err := b32.DecodeString(s)
		if err != nil || len(raw) != 20 {
			t.Fatalf("secret %q: %d bytes, %v", s, len(raw), err)
		}
		if seen[s] {
			t.Fatal("a secret repeated")
		}
		seen[s] = true
	}
}

func TestOTPAuthURI(t *testing.T) {
	p := TOTPPolicy{Issuer: "mfad", Algorithm: otp.AlgorithmSHA1, Digits: otp.DigitsSix, Period: 30}
	got := p.uri("JBSWY3DPEHPK3PXP", "alice", p.params())
	want := "otpauth://totp/mfad:alice?secret=JBSWY3DPEHPK3PXP&issuer=mfad&algorithm=SHA1&digits=6&period=30"
	if got != want {
		t.Fatalf("uri\n got %s\nwant %s", got, want)
	}
	// Issuers and accounts with spaces and colons stay one label and parse back.
	p.Issuer = "ACME Bank"
	u, err := url.Parse(p.uri("JBSWY3DPEHPK3PXP", "bob:smith@example.com", p.params()))
	if err != nil {
		t.Fatal(err)
	}
	if u.Path != "/ACME Bank:bob:smith@example.com" || u.Query().Get("issuer") != "ACME Bank" {
		t.Fatalf("escaped uri parsed as path %q issuer %q", u.Path, u.Query().Get("issuer"))
	}
	key, err := otp.NewKeyFromURL(u.String())
	if err != nil || key.Issuer() != "ACME Bank" || key.Secret() != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("pquerna reads issuer %q secret %q (%v)", key.Issuer(), key.Secret(), err)
	}
}

func TestBackupCodeShape(t *testing.T) {
	for range 200 {
		c := newBackupCode()
		norm, ok := normalizeBackupCode(c)
		if !ok || norm != c || len(c) != 9 || c[4] != '-' {
			t.Fatalf("code %q normalizes to %q, %v", c, norm, ok)
		}
	}
	for in, want := range map[string]string{
		"ABCD-EFGH": "abcd-efgh", " abcdefgh ": "abcd-efgh", "ab cd ef gh": "abcd-efgh",
	} {
		if got, ok := normalizeBackupCode(in); !ok || got != want {
			t.Errorf("%q → %q, %v", in, got, ok)
		}
	}
	for _, bad := range []string{"", "abcd-efg", "abcd-efgh1", "abcd-efg1", "abcd-efg8", "ábcd-efgh"} {
		if _, ok := normalizeBackupCode(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}
