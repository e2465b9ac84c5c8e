package handlers_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	vw "github.com/descope/virtualwebauthn"
	"github.com/google/uuid"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/channels"
)

// WebAuthn through the whole stack (HTTP, NATS, worker, SQLite) with a software
// authenticator (descope/virtualwebauthn) that signs what a browser would send: every
// refusal of issue 14 is one answer a client sees, plus what it leaves in the store.

// The relying party of the test stacks: the worker's defaults.
var testRP = vw.RelyingParty{ID: "localhost", Name: "mfad", Origin: "http://localhost:8080"}

// key is a software security key holding one credential.
type key struct {
	rp   vw.RelyingParty
	auth vw.Authenticator
	cred vw.Credential
}

func newKey(opts vw.AuthenticatorOptions) *key {
	return &key{rp: testRP, auth: vw.NewAuthenticatorWithOptions(opts), cred: newCredential()}
}

// newCredential is a P-256 credential whose coordinates are 32 bytes long.
// virtualwebauthn writes the COSE key's x and y with big.Int.Bytes, which drops leading
// zero bytes: one key in 64 would come out malformed and be refused, rightly.
func newCredential() vw.Credential {
	for {
		c := vw.NewCredential(vw.KeyTypeEC2)
		k, err := x509.ParsePKCS8PrivateKey(c.Key.Data)
		if err != nil {
			panic(err)
		}
		pub, err := k.(*ecdsa.PrivateKey).PublicKey.Bytes() // 0x04 ‖ x ‖ y, 32 bytes each
		if err != nil {
			panic(err)
		}
		if pub[1] != 0 && pub[33] != 0 {
			return c
		}
	}
}

// options starts a ceremony and returns the challenge id and the options JSON.
func (s *stack) options(user, path, body string) (string, string) {
	s.t.Helper()
	r := s.as(user, http.MethodPost, path, body)
	if r.Status != http.StatusOK {
		s.t.Fatalf("%s: %d %s", path, r.Status, r.Raw)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		s.t.Errorf("%s: Cache-Control %q, want no-store", path, cc)
	}
	pk, err := json.Marshal(get(r.Body, "data", "public_key"))
	if err != nil {
		s.t.Fatal(err)
	}
	if get(r.Body, "data", "expires_in") != float64(300) {
		s.t.Errorf("%s: expires_in %v, want 300", path, get(r.Body, "data", "expires_in"))
	}
	return get(r.Body, "data", "challenge_id").(string), string(pk)
}

// register runs a registration of k for user and returns the verify answer.
func (s *stack) register(user string, k *key) response {
	s.t.Helper()
	id, pk := s.options(user, "/api/v1/mfa/webauthn/register/options", `{"device_name":"YubiKey"}`)
	opts, err := vw.ParseAttestationOptions(pk)
	if err != nil {
		s.t.Fatalf("creation options %s: %v", pk, err)
	}
	att := vw.CreateAttestationResponse(k.rp, k.auth, k.cred, *opts)
	return s.as(user, http.MethodPost, "/api/v1/mfa/webauthn/register/verify",
		`{"challenge_id":"`+id+`","credential":`+att+`}`)
}

// mustRegister registers k and returns the new credential's id.
func (s *stack) mustRegister(user string, k *key) int64 {
	s.t.Helper()
	r := s.register(user, k)
	want(s.t, r, http.StatusOK, "")
	return int64(get(r.Body, "data", "id").(float64))
}

// assertion answers a sign-in challenge with k, its counter moved on as a real key's
// would be, and returns the challenge id and the assertion.
func (s *stack) assertion(user string, k *key) (string, string) {
	s.t.Helper()
	id, pk := s.options(user, "/api/v1/mfa/webauthn/authenticate/options", `{}`)
	opts, err := vw.ParseAssertionOptions(pk)
	if err != nil {
		s.t.Fatalf("request options %s: %v", pk, err)
	}
	k.cred.Counter++
	return id, vw.CreateAssertionResponse(k.rp, k.auth, k.cred, *opts)
}

// signIn is POST /api/v1/mfa/verify with an assertion of k.
func (s *stack) signIn(user string, k *key) response {
	s.t.Helper()
	id, a := s.assertion(user, k)
	return s.verifyWith(user, id, a)
}

func (s *stack) verifyWith(user, challenge, assertion string) response {
	s.t.Helper()
	return s.as(user, http.MethodPost, "/api/v1/mfa/verify", `{"challenge_id":"`+challenge+`","webauthn":`+assertion+`}`)
}

// failures is the user's count of consecutive failed checks, as the admin read says.
func (s *stack) failures(user string) int {
	s.t.Helper()
	r := s.call(http.MethodGet, "/api/v1/admin/users/"+user+"/mfa", "", "Authorization", "Bearer "+s.adminToken())
	want(s.t, r, http.StatusOK, "")
	return int(get(r.Body, "data", "failed_attempts").(float64))
}

// events is the types of the user's audit records, in order, and their bodies.
func (s *stack) events(user string) ([]string, []string) {
	s.t.Helper()
	rows, err := s.DB.Query("SELECT type, body FROM audit_log WHERE user_id = ? ORDER BY seq", user)
	if err != nil {
		s.t.Fatal(err)
	}
	defer rows.Close()
	var types, bodies []string
	for rows.Next() {
		var typ, body string
		if err := rows.Scan(&typ, &body); err != nil {
			s.t.Fatal(err)
		}
		types = append(types, typ)
		bodies = append(bodies, body)
	}
	return types, bodies
}

func countOf(vs []string, v string) int {
	n := 0
	for _, x := range vs {
		if x == v {
			n++
		}
	}
	return n
}

func webauthnStack(t *testing.T, p channels.WebAuthnPolicy) *stack {
	return newStack(t, func(o *stackOptions) { o.worker.WebAuthn = p })
}

// TestWebAuthnRegisterAndSignIn: a key registers (the user's first strong factor: backup
// codes come with it), shows in every list, signs in twice, and the events carry its
// model and flags but never its key or credential id.
func TestWebAuthnRegisterAndSignIn(t *testing.T) {
	s := webauthnStack(t, channels.WebAuthnPolicy{})
	k := newKey(vw.AuthenticatorOptions{})
	r := s.register("alice", k)
	want(t, r, http.StatusOK, "")
	aaguid := uuid.UUID(k.auth.Aaguid).String()
	if get(r.Body, "data", "type") != "webauthn" || get(r.Body, "data", "device_name") != "YubiKey" ||
		get(r.Body, "data", "aaguid") != aaguid || get(r.Body, "data", "user_verified") != true ||
		get(r.Body, "data", "backup_eligible") != false || get(r.Body, "data", "flagged") != false {
		t.Fatalf("registered: %s", r.Raw)
	}
	if codes, _ := get(r.Body, "data", "backup_codes").([]any); len(codes) != 10 {
		t.Fatalf("backup codes with the first strong factor: %v", get(r.Body, "data", "backup_codes"))
	}
	id := int64(get(r.Body, "data", "id").(float64))

	// Every list shows it: device, status, banking settings, admin.
	list := s.as("alice", http.MethodGet, "/api/v1/mfa/webauthn/devices", "")
	want(t, list, http.StatusOK, "")
	if get(list.Body, "data", "total_count") != float64(1) || get(list.Body, "data", "devices", 0, "id") != float64(id) {
		t.Fatalf("device list: %s", list.Raw)
	}
	st := s.as("alice", http.MethodGet, "/api/v1/mfa/status", "")
	if get(st.Body, "data", "enabled") != true || get(st.Body, "data", "methods", 0, "type") != "webauthn" ||
		get(st.Body, "data", "backup_codes_remaining") != float64(10) {
		t.Fatalf("status: %s", st.Raw)
	}
	if b := s.as("alice", http.MethodGet, "/settings/Mfa", ""); get(b.Body, "methods", 0, "type") != "webauthn" ||
		get(b.Body, "mfaSignInEnabled") != true {
		t.Fatalf("banking settings: %s", b.Raw)
	}

	for i := range 2 {
		v := s.signIn("alice", k)
		want(t, v, http.StatusOK, "")
		if get(v.Body, "data", "method") != "webauthn" || get(v.Body, "data", "user_verified") != true {
			t.Fatalf("sign-in %d: %s", i+1, v.Raw)
		}
		s.Clock.Advance(time.Second)
	}
	list = s.as("alice", http.MethodGet, "/api/v1/mfa/webauthn/devices", "")
	if get(list.Body, "data", "devices", 0, "last_used_at") == nil {
		t.Errorf("last_used_at not set after a sign-in: %s", list.Raw)
	}

	types, bodies := s.events("alice")
	if countOf(types, mfa.EventWebAuthnRegistered) != 1 || countOf(types, mfa.EventVerifySucceeded) != 2 ||
		countOf(types, mfa.EventBackupGenerated) != 1 || countOf(types, mfa.EventSignInEnabled) != 1 {
		t.Fatalf("events %v", types)
	}
	credID := base64.RawURLEncoding.EncodeToString(k.cred.ID)
	for i, b := range bodies {
		switch types[i] {
		case mfa.EventWebAuthnRegistered:
			if !strings.Contains(b, `"mfa:aaguid":"`+aaguid+`"`) || !strings.Contains(b, `"mfa:backup_eligible":false`) {
				t.Errorf("registered event lacks the model or flags: %s", b)
			}
		case mfa.EventVerifySucceeded:
			if !strings.Contains(b, `"mfa:method":"webauthn"`) || !strings.Contains(b, `"mfa:user_verified":true`) {
				t.Errorf("verify event: %s", b)
			}
		}
		if strings.Contains(b, credID) || strings.Contains(b, base64.StdEncoding.EncodeToString(k.cred.ID)) {
			t.Errorf("an event holds the credential id: %s", b)
		}
	}
	// The sealed session never shows its challenge in the clear.
	var sessions int
	s.DB.QueryRow("SELECT count(*) FROM webauthn_challenges").Scan(&sessions)
	rows, err := s.DB.Query("SELECT session_sealed FROM webauthn_challenges")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var sealed []byte
		rows.Scan(&sealed)
		if bytes.Contains(sealed, []byte("challenge")) {
			t.Fatalf("a challenge is stored in the clear: %q", sealed)
		}
	}
}

// TestWebAuthnRefusals: each refusal of issue 14, with its answer and whether it counts
// toward the lockout. Sign-in refusals count; registration refusals do not.
func TestWebAuthnRefusals(t *testing.T) {
	type env struct {
		s *stack
		k *key // alice's registered key
	}
	tests := []struct {
		name    string
		policy  channels.WebAuthnPolicy
		opts    vw.AuthenticatorOptions // alice's key
		run     func(t *testing.T, e env) response
		status  int
		code    string
		counted bool
		added   int // credentials the case registers before its refusal
	}{
		{name: "sign-in from another origin", run: func(t *testing.T, e env) response {
			e.k.rp.Origin = "https://evil.example"
			return e.s.signIn("alice", e.k)
		}, status: 400, code: mfa.CodeInvalidCredential, counted: true},
		{name: "sign-in for another relying party", run: func(t *testing.T, e env) response {
			e.k.rp.ID = "evil.example"
			return e.s.signIn("alice", e.k)
		}, status: 400, code: mfa.CodeInvalidCredential, counted: true},
		{name: "registration from another origin", run: func(t *testing.T, e env) response {
			k := newKey(vw.AuthenticatorOptions{})
			k.rp.Origin = "https://evil.example"
			return e.s.register("alice", k)
		}, status: 400, code: mfa.CodeInvalidCredential},
		{name: "replayed challenge", run: func(t *testing.T, e env) response {
			id, a := e.s.assertion("alice", e.k)
			want(t, e.s.verifyWith("alice", id, a), 200, "")
			return e.s.verifyWith("alice", id, a)
		}, status: 400, code: mfa.CodeInvalidChallenge, counted: true},
		{name: "replayed registration challenge", run: func(t *testing.T, e env) response {
			k := newKey(vw.AuthenticatorOptions{})
			id, pk := e.s.options("alice", "/api/v1/mfa/webauthn/register/options", `{"device_name":"Second"}`)
			opts, _ := vw.ParseAttestationOptions(pk)
			body := `{"challenge_id":"` + id + `","credential":` + vw.CreateAttestationResponse(k.rp, k.auth, k.cred, *opts) + `}`
			want(t, e.s.as("alice", http.MethodPost, "/api/v1/mfa/webauthn/register/verify", body), 200, "")
			return e.s.as("alice", http.MethodPost, "/api/v1/mfa/webauthn/register/verify", body)
		}, status: 400, code: mfa.CodeInvalidChallenge, added: 1},
		{name: "expired challenge", run: func(t *testing.T, e env) response {
			id, a := e.s.assertion("alice", e.k)
			e.s.Clock.Advance(5*time.Minute + time.Second)
			return e.s.verifyWith("alice", id, a)
		}, status: 400, code: mfa.CodeInvalidChallenge, counted: true},
		{name: "challenge of another user", run: func(t *testing.T, e env) response {
			bob := newKey(vw.AuthenticatorOptions{})
			e.s.mustRegister("bob", bob)
			id, a := e.s.assertion("bob", bob)
			return e.s.verifyWith("alice", id, a)
		}, status: 400, code: mfa.CodeInvalidChallenge, counted: true},
		{name: "another user's credential", run: func(t *testing.T, e env) response {
			bob := newKey(vw.AuthenticatorOptions{})
			e.s.mustRegister("bob", bob)
			id, pk := e.s.options("alice", "/api/v1/mfa/webauthn/authenticate/options", `{}`)
			opts, _ := vw.ParseAssertionOptions(pk)
			bob.cred.Counter++
			return e.s.verifyWith("alice", id, vw.CreateAssertionResponse(bob.rp, bob.auth, bob.cred, *opts))
		}, status: 400, code: mfa.CodeInvalidCredential, counted: true},
		{name: "another user's credential registered again", run: func(t *testing.T, e env) response {
			return e.s.register("bob", e.k)
		}, status: 409, code: mfa.CodeCredentialExists},
		{name: "bogus signature", run: func(t *testing.T, e env) response {
			id, a := e.s.assertion("alice", e.k)
			other := newCredential() // the same id, another private key
			other.ID, other.Counter = e.k.cred.ID, e.k.cred.Counter+1
			opts, _ := vw.ParseAssertionOptions(`{"challenge":"` + challengeOf(t, a) + `"}`)
			return e.s.verifyWith("alice", id, vw.CreateAssertionResponse(e.k.rp, e.k.auth, other, *opts))
		}, status: 400, code: mfa.CodeInvalidCredential, counted: true},
		{name: "counter regression", run: func(t *testing.T, e env) response {
			e.k.cred.Counter = 10
			want(t, e.s.signIn("alice", e.k), 200, "")
			e.k.cred.Counter = 5 // a clone that was used less
			return e.s.signIn("alice", e.k)
		}, status: 400, code: mfa.CodeInvalidCredential, counted: true},
		{name: "user verification required but absent at sign-in",
			policy: channels.WebAuthnPolicy{RequireUserVerification: true},
			run: func(t *testing.T, e env) response {
				e.k.auth.Options.UserNotVerified = true
				return e.s.signIn("alice", e.k)
			}, status: 400, code: mfa.CodeInvalidCredential, counted: true},
		{name: "user verification required but absent at registration",
			policy: channels.WebAuthnPolicy{RequireUserVerification: true},
			run: func(t *testing.T, e env) response {
				return e.s.register("alice", newKey(vw.AuthenticatorOptions{UserNotVerified: true}))
			}, status: 400, code: mfa.CodeInvalidCredential},
		{name: "synced passkey refused by policy",
			policy: channels.WebAuthnPolicy{RefuseSynced: true},
			run: func(t *testing.T, e env) response {
				return e.s.register("alice", newKey(vw.AuthenticatorOptions{BackupEligible: true, BackupState: true}))
			}, status: 403, code: mfa.CodeCredentialNotAllowed},
		{name: "authenticator model not on the allow list",
			policy: channels.WebAuthnPolicy{AAGUIDs: []uuid.UUID{uuid.MustParse("cb69481e-8ff7-4039-93ec-0a2729a154a8")}},
			run: func(t *testing.T, e env) response {
				return e.s.register("alice", newKey(vw.AuthenticatorOptions{}))
			}, status: 403, code: mfa.CodeCredentialNotAllowed},
		{name: "user presence absent", run: func(t *testing.T, e env) response {
			e.k.auth.Options.UserNotPresent = true
			return e.s.signIn("alice", e.k)
		}, status: 400, code: mfa.CodeInvalidCredential, counted: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := webauthnStack(t, tt.policy)
			k := newKey(tt.opts)
			if len(tt.policy.AAGUIDs) > 0 {
				k.auth.Aaguid = tt.policy.AAGUIDs[0] // alice's key is an allowed model
			}
			s.mustRegister("alice", k)
			before := s.failures("alice")
			methods := s.as("alice", http.MethodGet, "/api/v1/mfa/webauthn/devices", "")
			r := tt.run(t, env{s: s, k: k})
			want(t, r, tt.status, tt.code)
			after := s.failures("alice")
			if counted := after > before; counted != tt.counted {
				t.Errorf("counted toward the lockout: %v (failures %d → %d), want %v", counted, before, after, tt.counted)
			}
			if !tt.counted && tt.status != 200 {
				// A refused registration leaves no method behind.
				now := s.as("alice", http.MethodGet, "/api/v1/mfa/webauthn/devices", "")
				if get(now.Body, "data", "total_count") != get(methods.Body, "data", "total_count").(float64)+float64(tt.added) {
					t.Errorf("devices before %s, after %s", methods.Raw, now.Raw)
				}
			}
		})
	}
}

// challengeOf reads the challenge out of an assertion's client data.
func challengeOf(t *testing.T, assertion string) string {
	t.Helper()
	var a struct {
		Response struct {
			ClientDataJSON string `json:"clientDataJSON"`
		} `json:"response"`
	}
	if err := json.Unmarshal([]byte(assertion), &a); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(a.Response.ClientDataJSON)
	if err != nil {
		t.Fatal(err)
	}
	var cd struct{ Challenge string }
	if err := json.Unmarshal(raw, &cd); err != nil {
		t.Fatal(err)
	}
	return cd.Challenge
}

// TestWebAuthnCounterRegressionFlags: the refused clone flags the credential, which is
// then refused even with a higher counter, dropped from sign-in options, listed as
// flagged, and recorded once as webauthn.credential_flagged.
func TestWebAuthnCounterRegressionFlags(t *testing.T) {
	s := webauthnStack(t, channels.WebAuthnPolicy{})
	k := newKey(vw.AuthenticatorOptions{})
	s.mustRegister("alice", k)
	k.cred.Counter = 10
	want(t, s.signIn("alice", k), 200, "")
	clone := *k
	clone.cred.Counter = 3
	want(t, s.signIn("alice", &clone), 400, mfa.CodeInvalidCredential)

	list := s.as("alice", http.MethodGet, "/api/v1/mfa/webauthn/devices", "")
	if get(list.Body, "data", "devices", 0, "flagged") != true {
		t.Fatalf("not flagged: %s", list.Raw)
	}
	// The genuine key, further on, is refused too: the credential is compromised.
	// No usable key is left, so no sign-in challenge is issued.
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/webauthn/authenticate/options", `{}`), 404, mfa.CodeChannelNotFound)

	types, bodies := s.events("alice")
	if countOf(types, mfa.EventWebAuthnFlagged) != 1 {
		t.Fatalf("events %v", types)
	}
	for i, b := range bodies {
		if types[i] == mfa.EventWebAuthnFlagged &&
			(!strings.Contains(b, `"mfa:stored_sign_count":11`) || !strings.Contains(b, `"mfa:presented_sign_count":4`)) {
			t.Errorf("flag event: %s", b)
		}
	}
}

// TestWebAuthnLockout: failed assertions lock the user like wrong codes; while locked a
// good assertion is refused without being evaluated, and no challenge is issued.
func TestWebAuthnLockout(t *testing.T) {
	s := webauthnStack(t, channels.WebAuthnPolicy{})
	k := newKey(vw.AuthenticatorOptions{})
	s.mustRegister("alice", k)
	evil := *k
	evil.rp.Origin = "https://evil.example"
	for range 5 {
		want(t, s.signIn("alice", &evil), 400, mfa.CodeInvalidCredential)
	}
	r := s.as("alice", http.MethodPost, "/api/v1/mfa/webauthn/authenticate/options", `{}`)
	want(t, r, 429, mfa.CodeTooManyAttempts)
	if r.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	s.Clock.Advance(5*time.Minute + time.Second)
	want(t, s.signIn("alice", k), 200, "") // a success resets the count
	if n := s.failures("alice"); n != 0 {
		t.Fatalf("failures after a success: %d", n)
	}
}

// TestWebAuthnCascade: a passkey is a strong factor: backup codes exist while one (or a
// TOTP device) is verified; the last factor's removal revokes them and turns sign-in
// off; DruID removes the webauthn channel; an admin reset removes keys and outstanding
// challenges.
func TestWebAuthnCascade(t *testing.T) {
	s := webauthnStack(t, channels.WebAuthnPolicy{})

	// A TOTP device first: the key brings no new codes, and removing the device keeps
	// them, because the key is strong.
	dev := s.enrol("alice", "Phone")
	r := s.register("alice", newKey(vw.AuthenticatorOptions{}))
	want(t, r, http.StatusOK, "")
	if get(r.Body, "data", "backup_codes") != nil {
		t.Fatalf("second strong factor issued codes: %s", r.Raw)
	}
	key := int64(get(r.Body, "data", "id").(float64))
	// Each removal route removes its own kind only: the other kind's id is not found.
	want(t, s.as("alice", http.MethodDelete, "/api/v1/mfa/totp/devices/"+itoa(key), ""), 404, mfa.CodeDeviceNotFound)
	want(t, s.as("alice", http.MethodDelete, "/api/v1/mfa/webauthn/devices/"+itoa(dev.ID), ""), 404, mfa.CodeCredentialNotFound)
	want(t, s.as("alice", http.MethodDelete, "/api/v1/mfa/totp/devices/"+itoa(dev.ID), ""), 200, "")
	if n := get(s.as("alice", http.MethodGet, "/api/v1/mfa/backup-codes", "").Body, "data", "remaining"); n != float64(10) {
		t.Fatalf("backup codes after removing TOTP with a key left: %v", n)
	}
	// Not found and someone else's: one answer.
	want(t, s.as("bob", http.MethodDelete, "/api/v1/mfa/webauthn/devices/"+itoa(key), ""), 404, mfa.CodeCredentialNotFound)
	want(t, s.as("alice", http.MethodDelete, "/api/v1/mfa/webauthn/devices/abc", ""), 400, mfa.CodeValidation)
	rm := s.as("alice", http.MethodDelete, "/api/v1/mfa/webauthn/devices/"+itoa(key), "")
	want(t, rm, 200, "")
	st := s.as("alice", http.MethodGet, "/api/v1/mfa/status", "")
	if get(st.Body, "data", "enabled") != false || get(st.Body, "data", "backup_codes_remaining") != float64(0) {
		t.Fatalf("after removing the last factor: %s", st.Raw)
	}
	types, _ := s.events("alice")
	if countOf(types, mfa.EventWebAuthnRemoved) != 1 || countOf(types, mfa.EventBackupRevoked) != 1 || countOf(types, mfa.EventSignInDisabled) != 1 {
		t.Fatalf("events %v", types)
	}

	// DruID: context.mfa_channel webauthn removes every key.
	s.mustRegister("carol", newKey(vw.AuthenticatorOptions{}))
	s.mustRegister("carol", newKey(vw.AuthenticatorOptions{}))
	act := `{"actor":{"id":"carol","objectType":"person"},"verb":"delete","object":{"objectType":"user"},` +
		`"source":{"id":"pc","objectType":"device"},"context":{"mfa_channel":"webauthn"}}`
	checkDruid(t, s.druid("carol", "delete", act), 200, "MFA channel deleted")
	checkDruid(t, s.druid("carol", "delete", act), 417, "", druidErr{message: "mfa_channel_not_found"})
	if types, _ := s.events("carol"); countOf(types, mfa.EventWebAuthnRemoved) != 2 || countOf(types, mfa.EventChannelDeleted) != 1 {
		t.Fatalf("carol's events %v", types)
	}

	// Admin reset: keys go, and a registration started before it cannot finish after.
	s.mustRegister("dave", newKey(vw.AuthenticatorOptions{}))
	k := newKey(vw.AuthenticatorOptions{})
	id, pk := s.options("dave", "/api/v1/mfa/webauthn/register/options", `{"device_name":"Late"}`)
	reset := s.call(http.MethodDelete, "/api/v1/admin/users/dave/mfa", "", "Authorization", "Bearer "+s.adminToken())
	want(t, reset, 200, "")
	if get(reset.Body, "data", "removed") != float64(1) {
		t.Fatalf("reset: %s", reset.Raw)
	}
	opts, _ := vw.ParseAttestationOptions(pk)
	late := s.as("dave", http.MethodPost, "/api/v1/mfa/webauthn/register/verify",
		`{"challenge_id":"`+id+`","credential":`+vw.CreateAttestationResponse(k.rp, k.auth, k.cred, *opts)+`}`)
	want(t, late, 400, mfa.CodeInvalidChallenge)
}

// TestWebAuthnRequestShapes: what the HTTP side refuses before a command is sent.
func TestWebAuthnRequestShapes(t *testing.T) {
	s := webauthnStack(t, channels.WebAuthnPolicy{})
	id := "0193a4b2-7c1d-7e3f-8a9b-0c1d2e3f4a5b"
	for _, tc := range []struct {
		path, body string
		status     int
		field      string
	}{
		{"/api/v1/mfa/webauthn/register/options", `{}`, 422, "device_name"},
		{"/api/v1/mfa/webauthn/register/verify", `{"credential":{}}`, 422, "challenge_id"},
		{"/api/v1/mfa/webauthn/register/verify", `{"challenge_id":"nope","credential":{}}`, 422, "challenge_id"},
		{"/api/v1/mfa/webauthn/register/verify", `{"challenge_id":"` + id + `"}`, 422, "credential"},
		{"/api/v1/mfa/webauthn/register/verify", `{"challenge_id":"` + id + `","credential":"x"}`, 400, "credential"},
		{"/api/v1/mfa/verify", `{"webauthn":{}}`, 422, "challenge_id"},
		{"/api/v1/mfa/verify", `{"challenge_id":"` + id + `","webauthn":{},"code":"123456"}`, 422, "webauthn"},
		{"/api/v1/mfa/webauthn/authenticate/options", `{"user_id":"bob"}`, 403, ""},
	} {
		r := s.as("alice", http.MethodPost, tc.path, tc.body)
		if r.Status != tc.status || (tc.field != "" && get(r.Body, "error", "details", "field") != tc.field) {
			t.Errorf("%s %s: %d %s, want %d naming %s", tc.path, tc.body, r.Status, r.Raw, tc.status, tc.field)
		}
	}
	// Garbage that is well-formed JSON reaches the worker and is refused there.
	challenge, _ := s.options("alice", "/api/v1/mfa/webauthn/register/options", `{"device_name":"Key"}`)
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/webauthn/register/verify",
		`{"challenge_id":"`+challenge+`","credential":{"id":"x","type":"public-key"}}`), 400, mfa.CodeInvalidCredential)
	// An admin may ask for another user's sign-in challenge.
	s.mustRegister("bob", newKey(vw.AuthenticatorOptions{}))
	r := s.call(http.MethodPost, "/api/v1/mfa/webauthn/authenticate/options", `{"user_id":"bob"}`, "Authorization", "Bearer "+s.adminToken())
	want(t, r, 200, "")
	// Without sign-in MFA on, no challenge.
	want(t, s.as("erin", http.MethodPost, "/api/v1/mfa/webauthn/authenticate/options", ""), 400, mfa.CodeMFANotEnabled)
}
