package handlers_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mfad/mfad/handlers"
)

const statusPath = "/api/v1/mfa/status"

// Test keys are made once: RSA key generation is slow enough to matter on CI.
var (
	keysOnce sync.Once
	rsaKey   *rsa.PrivateKey
	ecKey    *ecdsa.PrivateKey
	ecKey2   *ecdsa.PrivateKey
	edKey    ed25519.PrivateKey
)

func testKeys(t *testing.T) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if ecKey2, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if _, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
}

// claimsAt are valid claims for sub at now; the overrides replace or, with a nil
// value, remove claims.
func claimsAt(now time.Time, sub string, overrides jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{"sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range overrides {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// sign signs claims with method and key, naming kid in the header when not empty.
func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s token: %v", method.Alg(), err)
	}
	return s
}

// unsigned builds an "alg: none" token by hand: the jwt library refuses to make one
// without a special key, and an attacker would not use the library anyway.
func unsigned(t *testing.T, alg string, claims jwt.MapClaims, signature string) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": alg, "typ": "JWT"}) + "." + enc(claims) + "." + signature
}

// signRaw signs header and payload bytes as they are with HS256 and testSecret: what the
// library would never encode (bytes that are not UTF-8, a crit header).
func signRaw(t *testing.T, header, payload []byte) string {
	t.Helper()
	signing := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	sig, err := jwt.SigningMethodHS256.Sign(signing, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func bearerHeader(token string) []string { return []string{"Authorization", "Bearer " + token} }

// wantUnauthorized checks a 401 as API.md §0 has it: an RFC 6750 challenge naming
// invalid_token and the device dialect's error body.
func wantUnauthorized(t *testing.T, r response) {
	t.Helper()
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401; body %s", r.Status, r.Raw)
	}
	wantChallenge(t, r)
	if get(r.Body, "success") != false || get(r.Body, "error", "code") != "UNAUTHORIZED" {
		t.Fatalf("401 body is not the device error envelope with UNAUTHORIZED: %s", r.Raw)
	}
	if msg, _ := get(r.Body, "error", "message").(string); msg == "" {
		t.Fatalf("401 body has no error.message: %s", r.Raw)
	}
	if get(r.Body, "data") != nil {
		t.Fatalf("401 body carries data: %s", r.Raw)
	}
}

func wantChallenge(t *testing.T, r response) {
	t.Helper()
	ch := r.Header.Get("WWW-Authenticate")
	if !strings.HasPrefix(ch, "Bearer ") || !strings.Contains(ch, `error="invalid_token"`) {
		t.Fatalf(`WWW-Authenticate = %q, want Bearer ... error="invalid_token"`, ch)
	}
}

func wantGatewayTimeout(t *testing.T, r response) {
	t.Helper()
	if r.Status != http.StatusGatewayTimeout {
		t.Fatalf("status = %d, want 504; body %s", r.Status, r.Raw)
	}
	if get(r.Body, "success") != false || get(r.Body, "error", "code") != "GATEWAY_TIMEOUT" {
		t.Fatalf("504 body is not the device error envelope with GATEWAY_TIMEOUT: %s", r.Raw)
	}
}

// wantStatusOK checks that the request got through auth and the worker answered.
func wantStatusOK(t *testing.T, r response) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", r.Status, r.Raw)
	}
	if get(r.Body, "success") != true || get(r.Body, "data", "enabled") != false {
		t.Fatalf("unexpected status body %s", r.Raw)
	}
}

func TestAuthMissingOrMalformedHeader(t *testing.T) {
	s := newStack(t)
	cases := []struct {
		name    string
		headers []string
	}{
		{"no Authorization header", nil},
		{"empty Authorization header", []string{"Authorization", ""}},
		{"Basic scheme", []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:pw"))}},
		{"token without scheme", []string{"Authorization", s.token("alice")}},
		{"scheme without token", []string{"Authorization", "Bearer"}},
		{"scheme with blank token", []string{"Authorization", "Bearer    "}},
		{"garbage token", []string{"Authorization", "Bearer not-a-jwt"}},
		{"three garbage segments", []string{"Authorization", "Bearer a.b.c"}},
		{"token cut short", []string{"Authorization", "Bearer " + strings.Join(strings.Split(s.token("alice"), ".")[:2], ".")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantUnauthorized(t, s.call(http.MethodGet, statusPath, "", tc.headers...))
		})
	}
	t.Run("scheme is case-insensitive", func(t *testing.T) {
		wantStatusOK(t, s.call(http.MethodGet, statusPath, "", "Authorization", "bearer "+s.token("alice")))
	})
}

// TestAuthHS256Claims is the claim matrix of API.md §0 for locally checked tokens.
func TestAuthHS256Claims(t *testing.T) {
	testKeys(t)
	const iss, aud = "https://id.example.com", "mfad-api"
	s := newStack(t, func(o *stackOptions) {
		o.auth.Issuer = iss
		o.auth.Audience = aud
	})
	now := s.Clock.Now()
	good := jwt.MapClaims{"iss": iss, "aud": aud}
	hs := func(extra jwt.MapClaims) string {
		c := claimsAt(now, "alice", good)
		for k, v := range extra {
			if v == nil {
				delete(c, k)
				continue
			}
			c[k] = v
		}
		return sign(t, jwt.SigningMethodHS256, testSecret, "", c)
	}
	otherSecret := []byte("another-secret-that-is-32-bytes-long!!")
	cases := []struct {
		name  string
		token string
		ok    bool
	}{
		{"valid", hs(nil), true},
		{"aud as array holding ours", hs(jwt.MapClaims{"aud": []string{"other", aud}}), true},
		{"bad signature", sign(t, jwt.SigningMethodHS256, otherSecret, "", claimsAt(now, "alice", good)), false},
		{"signature of another token", func() string {
			a, b := strings.Split(hs(nil), "."), strings.Split(hs(jwt.MapClaims{"sub": "bob"}), ".")
			return a[0] + "." + b[1] + "." + a[2]
		}(), false},
		{"alg none", unsigned(t, "none", claimsAt(now, "alice", good), ""), false},
		{"alg None with a signature", unsigned(t, "None", claimsAt(now, "alice", good), "c2ln"), false},
		{"alg HS512 with our secret", sign(t, jwt.SigningMethodHS512, testSecret, "", claimsAt(now, "alice", good)), false},
		{"RS256 when only HS256 is configured", sign(t, jwt.SigningMethodRS256, rsaKey, "", claimsAt(now, "alice", good)), false},
		{"expired within leeway", hs(jwt.MapClaims{"exp": now.Add(-30 * time.Second).Unix(), "iat": now.Add(-time.Hour).Unix()}), true},
		{"expired beyond leeway", hs(jwt.MapClaims{"exp": now.Add(-90 * time.Second).Unix(), "iat": now.Add(-time.Hour).Unix()}), false},
		{"no exp", hs(jwt.MapClaims{"exp": nil}), false},
		{"nbf within leeway", hs(jwt.MapClaims{"nbf": now.Add(30 * time.Second).Unix()}), true},
		{"nbf beyond leeway", hs(jwt.MapClaims{"nbf": now.Add(90 * time.Second).Unix()}), false},
		{"iat within leeway", hs(jwt.MapClaims{"iat": now.Add(30 * time.Second).Unix()}), true},
		{"iat beyond leeway", hs(jwt.MapClaims{"iat": now.Add(90 * time.Second).Unix()}), false},
		{"wrong iss", hs(jwt.MapClaims{"iss": "https://evil.example.com"}), false},
		{"no iss", hs(jwt.MapClaims{"iss": nil}), false},
		{"wrong aud", hs(jwt.MapClaims{"aud": "someone-else"}), false},
		{"aud array without ours", hs(jwt.MapClaims{"aud": []string{"a", "b"}}), false},
		{"no aud", hs(jwt.MapClaims{"aud": nil}), false},
		{"no sub", hs(jwt.MapClaims{"sub": nil}), false},
		{"empty sub", hs(jwt.MapClaims{"sub": ""}), false},
		{"sub of 128 chars", hs(jwt.MapClaims{"sub": strings.Repeat("a", 128)}), true},
		{"sub of 129 chars", hs(jwt.MapClaims{"sub": strings.Repeat("a", 129)}), false},
		{"sub not a string", hs(jwt.MapClaims{"sub": 42}), false},
		{"sub of 128 two-byte characters", hs(jwt.MapClaims{"sub": strings.Repeat("ñ", 128)}), true},
		{"sub of 129 two-byte characters", hs(jwt.MapClaims{"sub": strings.Repeat("ñ", 129)}), false},
		{"sub with letters of any script", hs(jwt.MapClaims{"sub": "José·Ørsted·علي·李"}), true},
		{"sub with a right-to-left override", hs(jwt.MapClaims{"sub": "alice\u202egnp.exe"}), false},
		{"sub with a left-to-right embedding", hs(jwt.MapClaims{"sub": "\u202aalice"}), false},
		{"sub with a pop directional formatting", hs(jwt.MapClaims{"sub": "alice\u202c"}), false},
		{"sub with a right-to-left isolate", hs(jwt.MapClaims{"sub": "alice\u2067x"}), false},
		{"sub with a pop directional isolate", hs(jwt.MapClaims{"sub": "alice\u2069"}), false},
		{"sub with a right-to-left mark", hs(jwt.MapClaims{"sub": "alice\u200f"}), false},
		{"sub with a zero-width space", hs(jwt.MapClaims{"sub": "ali\u200bce"}), false},
		{"sub with a byte order mark", hs(jwt.MapClaims{"sub": "\ufeffalice"}), false},
		{"sub with a newline", hs(jwt.MapClaims{"sub": "alice\nlevel=ERROR"}), false},
		{"sub with a NUL", hs(jwt.MapClaims{"sub": "alice\x00"}), false},
		{"sub with a tab", hs(jwt.MapClaims{"sub": "alice\tx"}), false},
		{"sub with a line separator", hs(jwt.MapClaims{"sub": "alice\u2028x"}), false},
		{"sub with a replacement character", hs(jwt.MapClaims{"sub": "alice\ufffd"}), false},
		{"sub that is not UTF-8", signRaw(t, []byte(`{"alg":"HS256","typ":"JWT"}`),
			fmt.Appendf(nil, `{"sub":"alice\xff","iss":%q,"aud":%q,"iat":%d,"exp":%d}`, iss, aud, now.Unix(), now.Add(time.Hour).Unix())), false},
		{"claims as the library would sign them, by hand", signRaw(t, []byte(`{"alg":"HS256","typ":"JWT"}`),
			fmt.Appendf(nil, `{"sub":"alice","iss":%q,"aud":%q,"iat":%d,"exp":%d}`, iss, aud, now.Unix(), now.Add(time.Hour).Unix())), true},
		{"exp as a string", hs(jwt.MapClaims{"exp": fmt.Sprint(now.Add(time.Hour).Unix())}), false},
		{"nbf as a string", hs(jwt.MapClaims{"nbf": fmt.Sprint(now.Unix())}), false},
		{"iat as a string", hs(jwt.MapClaims{"iat": fmt.Sprint(now.Unix())}), false},
		{"auth_time as a string", hs(jwt.MapClaims{"auth_time": fmt.Sprint(now.Unix())}), false},
		{"exp with a fraction", hs(jwt.MapClaims{"exp": float64(now.Add(time.Hour).Unix()) + 0.5}), true},
		{"a crit header", signRaw(t, []byte(`{"alg":"HS256","typ":"JWT","crit":["exp"]}`),
			fmt.Appendf(nil, `{"sub":"alice","iss":%q,"aud":%q,"iat":%d,"exp":%d}`, iss, aud, now.Unix(), now.Add(time.Hour).Unix())), false},
		{"an empty crit header", signRaw(t, []byte(`{"alg":"HS256","typ":"JWT","crit":[]}`),
			fmt.Appendf(nil, `{"sub":"alice","iss":%q,"aud":%q,"iat":%d,"exp":%d}`, iss, aud, now.Unix(), now.Add(time.Hour).Unix())), false},
		{"scope of the wrong type", hs(jwt.MapClaims{"scope": 7}), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := s.call(http.MethodGet, statusPath, "", bearerHeader(tc.token)...)
			if tc.ok {
				wantStatusOK(t, r)
				return
			}
			wantUnauthorized(t, r)
		})
	}
}

// TestAuthIssuerAudienceUnchecked: with neither configured, any iss and aud pass.
func TestAuthIssuerAudienceUnchecked(t *testing.T) {
	s := newStack(t)
	tok := s.token("alice", jwt.MapClaims{"iss": "whoever", "aud": []string{"x", "y"}})
	wantStatusOK(t, s.call(http.MethodGet, statusPath, "", bearerHeader(tok)...))
}

// jwksServer serves a JSON Web Key Set that a test can swap, counting fetches.
type jwksServer struct {
	URL     string
	fetches atomic.Int32
	mu      sync.Mutex
	keys    []map[string]string
	delay   time.Duration // each answer waits this long: a slow key server
}

func newJWKSServer(t *testing.T, keys ...map[string]string) *jwksServer {
	t.Helper()
	j := &jwksServer{keys: keys}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.fetches.Add(1)
		j.mu.Lock()
		body, err := json.Marshal(map[string]any{"keys": j.keys})
		delay := j.delay
		j.mu.Unlock()
		time.Sleep(delay)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	j.URL = srv.URL
	return j
}

func (j *jwksServer) serve(keys ...map[string]string) {
	j.mu.Lock()
	j.keys = keys
	j.mu.Unlock()
}

// jwkOf is the public JWK (RFC 7517/7518/8037) of pub under kid.
func jwkOf(t *testing.T, kid string, pub crypto.PublicKey) map[string]string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
			"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		point, err := k.Bytes() // 0x04 || X || Y
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{"kty": "EC", "kid": kid, "crv": "P-256", "alg": "ES256",
			"x": b64(point[1:33]), "y": b64(point[33:])}
	case ed25519.PublicKey:
		return map[string]string{"kty": "OKP", "kid": kid, "crv": "Ed25519", "alg": "EdDSA", "x": b64(k)}
	}
	t.Fatalf("no JWK for %T", pub)
	return nil
}

func jwksStack(t *testing.T, url string, hmac []byte) *stack {
	t.Helper()
	return newStack(t, func(o *stackOptions) {
		o.auth.HMACSecret = hmac
		o.auth.JWKSURL = url
	})
}

func TestAuthJWKS(t *testing.T) {
	testKeys(t)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	jw := newJWKSServer(t,
		jwkOf(t, "rsa", &rsaKey.PublicKey),
		jwkOf(t, "ec", &ecKey.PublicKey),
		jwkOf(t, "ed", edKey.Public()),
		jwkOf(t, "weak", &weak.PublicKey),
	)
	s := jwksStack(t, jw.URL, nil)
	now := s.Clock.Now()
	c := claimsAt(now, "alice", nil)
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: mustPKIX(t, &rsaKey.PublicKey)})
	cases := []struct {
		name  string
		token string
		ok    bool
	}{
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey, "rsa", c), true},
		{"ES256", sign(t, jwt.SigningMethodES256, ecKey, "ec", c), true},
		{"EdDSA", sign(t, jwt.SigningMethodEdDSA, edKey, "ed", c), true},
		{"unknown kid", sign(t, jwt.SigningMethodES256, ecKey, "nope", c), false},
		{"no kid with several keys", sign(t, jwt.SigningMethodES256, ecKey, "", c), false},
		{"kid of another key", sign(t, jwt.SigningMethodES256, ecKey2, "ec", c), false},
		{"ES256 naming the RSA key", sign(t, jwt.SigningMethodES256, ecKey, "rsa", c), false},
		{"RSA key below 2048 bits", sign(t, jwt.SigningMethodRS256, weak, "weak", c), false},
		{"HS256 keyed with the RSA key's PEM", sign(t, jwt.SigningMethodHS256, rsaPEM, "rsa", c), false},
		{"HS256 keyed with the RSA key's DER", sign(t, jwt.SigningMethodHS256, mustPKIX(t, &rsaKey.PublicKey), "rsa", c), false},
		{"HS256 keyed with the JWK n", sign(t, jwt.SigningMethodHS256, rsaKey.N.Bytes(), "rsa", c), false},
		{"alg none", unsigned(t, "none", c, ""), false},
		{"expired RS256", sign(t, jwt.SigningMethodRS256, rsaKey, "rsa",
			claimsAt(now, "alice", jwt.MapClaims{"exp": now.Add(-2 * time.Minute).Unix(), "iat": now.Add(-time.Hour).Unix()})), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := s.call(http.MethodGet, statusPath, "", bearerHeader(tc.token)...)
			if tc.ok {
				wantStatusOK(t, r)
				return
			}
			wantUnauthorized(t, r)
		})
	}

	// With an HS256 secret configured next to the JWKS, HS256 is a valid algorithm: the
	// token must still be checked against our secret, never against a JWKS key.
	t.Run("HS256 keyed with the RSA PEM while HS256 is configured too", func(t *testing.T) {
		both := jwksStack(t, jw.URL, testSecret)
		now := both.Clock.Now()
		wantUnauthorized(t, both.call(http.MethodGet, statusPath, "",
			bearerHeader(sign(t, jwt.SigningMethodHS256, rsaPEM, "rsa", claimsAt(now, "alice", nil)))...))
		wantStatusOK(t, both.call(http.MethodGet, statusPath, "", bearerHeader(both.token("alice"))...))
		wantStatusOK(t, both.call(http.MethodGet, statusPath, "",
			bearerHeader(sign(t, jwt.SigningMethodRS256, rsaKey, "rsa", claimsAt(now, "alice", nil)))...))
	})
}

func mustPKIX(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestAuthJWKSSingleKeyWithoutKid: a set of one key may be used by tokens naming no kid.
func TestAuthJWKSSingleKeyWithoutKid(t *testing.T) {
	testKeys(t)
	jw := newJWKSServer(t, jwkOf(t, "only", edKey.Public()))
	s := jwksStack(t, jw.URL, nil)
	wantStatusOK(t, s.call(http.MethodGet, statusPath, "",
		bearerHeader(sign(t, jwt.SigningMethodEdDSA, edKey, "", claimsAt(s.Clock.Now(), "alice", nil)))...))
}

func TestAuthJWKSRotation(t *testing.T) {
	testKeys(t)
	oldKey, newKey := jwkOf(t, "k1", &ecKey.PublicKey), jwkOf(t, "k2", &ecKey2.PublicKey)

	call := func(s *stack, key *ecdsa.PrivateKey, kid string) response {
		t.Helper()
		tok := sign(t, jwt.SigningMethodES256, key, kid, claimsAt(s.Clock.Now(), "alice", nil))
		return s.call(http.MethodGet, statusPath, "", bearerHeader(tok)...)
	}
	wantFetches := func(jw *jwksServer, n int32) {
		t.Helper()
		if got := jw.fetches.Load(); got != n {
			t.Fatalf("JWKS fetched %d times, want %d", got, n)
		}
	}

	t.Run("unknown kid refetches, rate limited", func(t *testing.T) {
		jw := newJWKSServer(t, oldKey)
		s := jwksStack(t, jw.URL, nil)
		wantStatusOK(t, call(s, ecKey, "k1"))
		wantStatusOK(t, call(s, ecKey, "k1"))
		wantFetches(jw, 1) // cached
		verifiedUnderK1 := sign(t, jwt.SigningMethodES256, ecKey, "k1", claimsAt(s.Clock.Now(), "alice", nil))
		wantStatusOK(t, s.call(http.MethodGet, statusPath, "", bearerHeader(verifiedUnderK1)...))

		jw.serve(newKey)
		// Within a second of the last fetch, an unknown kid does not reach the key
		// server: made-up kids must not turn into a request flood.
		wantUnauthorized(t, call(s, ecKey2, "k2"))
		wantUnauthorized(t, call(s, ecKey2, "made-up"))
		wantFetches(jw, 1)

		s.Clock.Advance(2 * time.Second)
		wantStatusOK(t, call(s, ecKey2, "k2"))
		wantFetches(jw, 2)
		// The refetched set replaced the old one: k1 is gone at once, for a token
		// verified (and remembered) under the old set too.
		wantUnauthorized(t, s.call(http.MethodGet, statusPath, "", bearerHeader(verifiedUnderK1)...))
		wantUnauthorized(t, call(s, ecKey, "k1"))

		s.Clock.Advance(2 * time.Second)
		wantUnauthorized(t, call(s, ecKey, "k1"))
		wantFetches(jw, 3)
		wantStatusOK(t, call(s, ecKey2, "k2"))
		wantFetches(jw, 3)
	})

	t.Run("old kid refused once the cache expires", func(t *testing.T) {
		jw := newJWKSServer(t, oldKey)
		s := jwksStack(t, jw.URL, nil)
		wantStatusOK(t, call(s, ecKey, "k1"))
		jw.serve(newKey)
		// Until the cache expires a known kid is served from it.
		s.Clock.Advance(5 * time.Minute)
		wantStatusOK(t, call(s, ecKey, "k1"))
		wantFetches(jw, 1)
		s.Clock.Advance(6 * time.Minute)
		wantUnauthorized(t, call(s, ecKey, "k1"))
		wantFetches(jw, 2)
		wantStatusOK(t, call(s, ecKey2, "k2"))
		wantFetches(jw, 2)
	})
}

// introspectionServer is an RFC 7662 endpoint. The token decides the answer:
// "active:<sub>[:<scope>]", "inactive", "slow", "fail" (500), anything else inactive.
type introspectionServer struct {
	URL  string
	mu   sync.Mutex
	seen []introspectionRequest
}

type introspectionRequest struct {
	method, contentType, token, hint string
	user, password                   string
	basic                            bool
}

func newIntrospectionServer(t *testing.T) *introspectionServer {
	t.Helper()
	is := &introspectionServer{}
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := introspectionRequest{method: r.Method, contentType: r.Header.Get("Content-Type"),
			token: r.PostForm.Get("token"), hint: r.PostForm.Get("token_type_hint")}
		req.user, req.password, req.basic = r.BasicAuth()
		is.mu.Lock()
		is.seen = append(is.seen, req)
		is.mu.Unlock()

		w.Header().Set("Content-Type", "application/json")
		kind, rest, _ := strings.Cut(req.token, ":")
		switch kind {
		case "active":
			sub, scope, _ := strings.Cut(rest, ":")
			json.NewEncoder(w).Encode(map[string]any{"active": true, "sub": sub, "scope": scope,
				"exp": time.Now().Add(time.Hour).Unix()})
		case "slow":
			select {
			case <-r.Context().Done():
			case <-stop:
			}
		case "fail":
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		case "refused":
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		default:
			w.Write([]byte(`{"active":false}`))
		}
	}))
	t.Cleanup(func() { close(stop); srv.Close() })
	is.URL = srv.URL
	return is
}

func (is *introspectionServer) last(t *testing.T) introspectionRequest {
	t.Helper()
	is.mu.Lock()
	defer is.mu.Unlock()
	if len(is.seen) == 0 {
		t.Fatal("the introspection endpoint was not called")
	}
	return is.seen[len(is.seen)-1]
}

func (is *introspectionServer) calls() int {
	is.mu.Lock()
	defer is.mu.Unlock()
	return len(is.seen)
}

func introspectionStack(t *testing.T, url, clientID, clientSecret string, timeout time.Duration) *stack {
	t.Helper()
	return newStack(t, func(o *stackOptions) {
		o.auth.HMACSecret = nil
		o.auth.IntrospectionURL = url
		o.auth.IntrospectionID = clientID
		o.auth.IntrospectionSecret = clientSecret
		o.auth.IntrospectionTimeout = timeout
	})
}

func TestAuthIntrospection(t *testing.T) {
	is := newIntrospectionServer(t)
	const timeout = 300 * time.Millisecond
	s := introspectionStack(t, is.URL, "mfad client", "s3cr:et&", timeout)

	t.Run("active token", func(t *testing.T) {
		wantStatusOK(t, s.call(http.MethodGet, statusPath, "", bearerHeader("active:alice")...))
		got := is.last(t)
		want := introspectionRequest{method: http.MethodPost, contentType: "application/x-www-form-urlencoded",
			token: "active:alice", hint: "access_token",
			// RFC 6749 §2.3.1: client credentials are form-encoded before Basic auth.
			user: "mfad+client", password: "s3cr%3Aet%26", basic: true}
		if got != want {
			t.Fatalf("introspection request = %+v, want %+v", got, want)
		}
	})
	t.Run("inactive token", func(t *testing.T) {
		wantUnauthorized(t, s.call(http.MethodGet, statusPath, "", bearerHeader("inactive")...))
	})
	t.Run("active token without sub", func(t *testing.T) {
		wantUnauthorized(t, s.call(http.MethodGet, statusPath, "", bearerHeader("active:")...))
	})
	t.Run("no token is not sent for introspection", func(t *testing.T) {
		before := is.calls()
		wantUnauthorized(t, s.call(http.MethodGet, statusPath, ""))
		if is.calls() != before {
			t.Fatal("a request without a token reached the introspection endpoint")
		}
	})
	t.Run("server slower than the timeout", func(t *testing.T) {
		start := time.Now()
		wantGatewayTimeout(t, s.call(http.MethodGet, statusPath, "", bearerHeader("slow")...))
		if d := time.Since(start); d > timeout+2*time.Second {
			t.Fatalf("answered after %v; the timeout is %v", d, timeout)
		}
	})
	t.Run("server error", func(t *testing.T) {
		wantGatewayTimeout(t, s.call(http.MethodGet, statusPath, "", bearerHeader("fail")...))
	})
	t.Run("our client credentials refused", func(t *testing.T) {
		// Not the caller's fault: a misconfigured mfad must not look like a bad token.
		wantGatewayTimeout(t, s.call(http.MethodGet, statusPath, "", bearerHeader("refused")...))
	})
	t.Run("no client credentials configured", func(t *testing.T) {
		anon := introspectionStack(t, is.URL, "", "", timeout)
		wantStatusOK(t, anon.call(http.MethodGet, statusPath, "", bearerHeader("active:bob")...))
		if got := is.last(t); got.basic {
			t.Fatalf("sent Basic credentials %q/%q though none are configured", got.user, got.password)
		}
	})
	t.Run("server unreachable", func(t *testing.T) {
		gone := httptest.NewServer(http.NotFoundHandler())
		url := gone.URL
		gone.Close()
		down := introspectionStack(t, url, "", "", timeout)
		wantGatewayTimeout(t, down.call(http.MethodGet, statusPath, "", bearerHeader("active:alice")...))
	})
}

// TestAuthScopes: scope arrives as a space-separated string (RFC 8693) or an array;
// either way mfa:admin makes the caller an admin. The Principal is checked directly
// here; TestAuthAdminScope checks the same through the admin routes.
func TestAuthScopes(t *testing.T) {
	now := time.Now()
	a, err := handlers.NewAuthenticator(handlers.AuthConfig{HMACSecret: testSecret, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		scope  any // nil = no scope claim
		scopes []string
		admin  bool
	}{
		{"no scope", nil, nil, false},
		{"string with admin", "openid mfa:admin", []string{"openid", "mfa:admin"}, true},
		{"string with extra spaces", "  mfa:admin   profile ", []string{"mfa:admin", "profile"}, true},
		{"array with admin", []string{"profile", "mfa:admin"}, []string{"profile", "mfa:admin"}, true},
		{"string without admin", "openid profile", []string{"openid", "profile"}, false},
		{"admin as a prefix only", "mfa:admin2 mfa:administrator", []string{"mfa:admin2", "mfa:administrator"}, false},
		{"admin in a longer array element", []string{"openid mfa:admin"}, []string{"openid mfa:admin"}, false},
		{"tab-separated", "openid\tmfa:admin", []string{"openid\tmfa:admin"}, false},
		{"comma-separated", "openid,mfa:admin", []string{"openid,mfa:admin"}, false},
		{"newline-separated", "openid\nmfa:admin", []string{"openid\nmfa:admin"}, false},
		{"no-break space", "openid\u00a0mfa:admin", []string{"openid\u00a0mfa:admin"}, false},
		{"empty string", "", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := claimsAt(now, "alice", jwt.MapClaims{"scope": tc.scope, "auth_time": now.Add(-time.Minute).Unix()})
			p, err := a.Authenticate(context.Background(), sign(t, jwt.SigningMethodHS256, testSecret, "", c))
			if err != nil {
				t.Fatal(err)
			}
			if p.Subject != "alice" || !slices.Equal(p.Scopes, tc.scopes) || p.Admin() != tc.admin {
				t.Fatalf("principal = %+v (admin %v), want scopes %q admin %v", p, p.Admin(), tc.scopes, tc.admin)
			}
			if want := now.Add(-time.Minute).Truncate(time.Second); !p.AuthTime.Equal(want) {
				t.Fatalf("auth time = %v, want %v", p.AuthTime, want)
			}
		})
	}

	t.Run("introspection scope", func(t *testing.T) {
		is := newIntrospectionServer(t)
		a, err := handlers.NewAuthenticator(handlers.AuthConfig{IntrospectionURL: is.URL})
		if err != nil {
			t.Fatal(err)
		}
		p, err := a.Authenticate(context.Background(), "active:svc:openid mfa:admin")
		if err != nil {
			t.Fatal(err)
		}
		if p.Subject != "svc" || !p.Admin() || !p.AuthTime.IsZero() {
			t.Fatalf("principal = %+v, want svc with admin and no auth time", p)
		}
	})
}

// TestAuthAdminScope: the admin routes open to mfa:admin in either scope form and
// answer 403 insufficient_scope to everyone else.
func TestAuthAdminScope(t *testing.T) {
	s := newStack(t)
	const path = "/api/v1/admin/users/bob/mfa"
	cases := []struct {
		name  string
		scope any
		admin bool
	}{
		{"string", "openid mfa:admin", true},
		{"array", []string{"openid", "mfa:admin"}, true},
		{"no scope", nil, false},
		{"other scopes", "openid profile", false},
		{"look-alike scope", "mfa:admin2", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := jwt.MapClaims{}
			if tc.scope != nil {
				c["scope"] = tc.scope
			}
			r := s.call(http.MethodGet, path, "", bearerHeader(s.token("alice", c))...)
			if tc.admin {
				if r.Status != http.StatusOK || get(r.Body, "data", "user_id") != "bob" {
					t.Fatalf("admin: status %d body %s, want 200 for user bob", r.Status, r.Raw)
				}
				return
			}
			ch := r.Header.Get("WWW-Authenticate")
			if r.Status != http.StatusForbidden || get(r.Body, "error", "code") != "FORBIDDEN" ||
				!strings.Contains(ch, `error="insufficient_scope"`) || !strings.Contains(ch, `scope="mfa:admin"`) {
				t.Fatalf("non-admin: status %d, WWW-Authenticate %q, body %s; want 403 insufficient_scope", r.Status, ch, r.Raw)
			}
		})
	}
	t.Run("no token is 401, not 403", func(t *testing.T) {
		wantUnauthorized(t, s.call(http.MethodGet, path, ""))
	})
}

func TestNewAuthenticatorRefusesWeakConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  handlers.AuthConfig
	}{
		{"nothing configured", handlers.AuthConfig{}},
		{"short HS256 secret", handlers.AuthConfig{HMACSecret: []byte("too short")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := handlers.NewAuthenticator(tc.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// TestAuth401InEveryDialect: the 401 body follows the dialect of the path (API.md §0).
func TestAuth401InEveryDialect(t *testing.T) {
	s := newStack(t)
	expired := s.token("alice", jwt.MapClaims{"exp": s.Clock.Now().Add(-time.Hour).Unix(),
		"iat": s.Clock.Now().Add(-2 * time.Hour).Unix()})
	credentials := map[string][]string{"no token": nil, "expired token": bearerHeader(expired)}
	t.Run("banking", func(t *testing.T) {
		for name, headers := range credentials {
			r := s.call(http.MethodGet, "/settings/Mfa", "", headers...)
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("%s: status = %d, want 401; body %s", name, r.Status, r.Raw)
			}
			wantChallenge(t, r)
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
				t.Fatalf("%s: Content-Type = %q, want application/problem+json", name, ct)
			}
			if get(r.Body, "code") != "UNAUTHORIZED" || get(r.Body, "status") != float64(401) {
				t.Fatalf("%s: 401 body is not a problem with code UNAUTHORIZED: %s", name, r.Raw)
			}
		}
	})
	t.Run("druid", func(t *testing.T) {
		for name, headers := range credentials {
			r := s.call(http.MethodPost, "/activityid/v1/mfa/delete", "{}", append([]string{"From", "test"}, headers...)...)
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("%s: status = %d, want 401; body %s", name, r.Status, r.Raw)
			}
			wantChallenge(t, r)
			if get(r.Body, "result", "status") != float64(401) {
				t.Fatalf("%s: 401 body is not a DruID result with status 401: %s", name, r.Raw)
			}
		}
	})
}

// TestAuthJWKSSlowKeyServer: once the cached set is stale one request refetches it while
// the others go on with the cached keys, instead of queueing behind a slow key server.
func TestAuthJWKSSlowKeyServer(t *testing.T) {
	testKeys(t)
	jw := newJWKSServer(t, jwkOf(t, "k1", &ecKey.PublicKey))
	s := jwksStack(t, jw.URL, nil)
	call := func() response {
		tok := sign(t, jwt.SigningMethodES256, ecKey, "k1", claimsAt(s.Clock.Now(), "alice", nil))
		return s.call(http.MethodGet, statusPath, "", bearerHeader(tok)...)
	}
	wantStatusOK(t, call())
	jw.mu.Lock()
	jw.delay = 2 * time.Second
	jw.mu.Unlock()
	s.Clock.Advance(11 * time.Minute) // past jwksTTL

	first := make(chan response, 1)
	go func() { first <- call() }()
	time.Sleep(200 * time.Millisecond) // the first request is inside the slow fetch
	start := time.Now()
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() { defer wg.Done(); wantStatusOK(t, call()) }()
	}
	wg.Wait()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("requests with a cached key waited %v for the key server", d)
	}
	wantStatusOK(t, <-first)
	if n := jw.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (start and one refresh)", n)
	}
}
