package handlers_test

import (
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/channels"
)

// The account page in a real browser: headless Debian Chromium with a DevTools virtual
// authenticator, against the whole stack. A user registers a security key, signs in
// with it twice, is refused a bogus signature and a cloned key (the same private key
// put back with a lower counter), and a synced passkey is refused or accepted as the
// policy says.
//
// Facts this test relies on: the page is opened at http://localhost:PORT, never
// 127.0.0.1 (an IP address is no valid RP ID for the library or for Chromium), and the
// worker is told that origin, port included, before it starts.

// accountStack starts a stack whose WebAuthn origin is its own URL, and returns the URL
// a browser must open.
func accountStack(t *testing.T, p channels.WebAuthnPolicy) (*stack, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	origin := "http://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	p.Origins = []string{origin}
	s := newStack(t, func(o *stackOptions) {
		o.worker.WebAuthn = p
		o.listener = ln
	})
	return s, origin
}

// browser starts headless Chromium and returns a tab's context, ended with the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	chrome := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	// The browser lives as long as the first call's context: no deadline on it, but a
	// timer that kills a browser that never comes up.
	startup := time.AfterFunc(30*time.Second, cancelAlloc)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	startup.Stop()
	ctx, cancel := context.WithTimeout(tab, 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// authenticator is a DevTools virtual authenticator of the tab.
type authenticator struct {
	t   *testing.T
	ctx context.Context
	id  webauthn.AuthenticatorID
}

// addAuthenticator adds a CTAP2 USB key that verifies its user; synced makes its
// credentials backup eligible and backed up, as a synced passkey's are.
func addAuthenticator(t *testing.T, ctx context.Context, synced bool) *authenticator {
	t.Helper()
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	res, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol:                    webauthn.AuthenticatorProtocolCtap2,
			Ctap2version:                webauthn.Ctap2versionCtap21,
			Transport:                   webauthn.AuthenticatorTransportUsb,
			HasResidentKey:              true,
			HasUserVerification:         true,
			IsUserVerified:              true,
			AutomaticPresenceSimulation: true,
			DefaultBackupEligibility:    synced,
			DefaultBackupState:          synced,
		}})
	if err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	return &authenticator{t: t, ctx: ctx, id: res.AuthenticatorID}
}

func (a *authenticator) credentials() []*webauthn.Credential {
	a.t.Helper()
	res, err := chromedp.Call(a.ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: a.id})
	if err != nil {
		a.t.Fatalf("WebAuthn.getCredentials: %v", err)
	}
	return res.Credentials
}

func (a *authenticator) bogusSignatures(on bool) {
	a.t.Helper()
	if _, err := chromedp.Call(a.ctx, webauthn.SetResponseOverrideBits,
		webauthn.SetResponseOverrideBitsParams{AuthenticatorID: a.id, IsBogusSignature: &on}); err != nil {
		a.t.Fatalf("WebAuthn.setResponseOverrideBits: %v", err)
	}
}

// clone replaces the credential with one made of the same private key and a lower sign
// counter: a copy of the key that was used less. It sends WebAuthn.addCredential as raw
// JSON: cdproto's typed command always sends generateCmtgKeyOnNextOperation, which
// Chromium 156 refuses.
func (a *authenticator) clone(c *webauthn.Credential, signCount int) {
	a.t.Helper()
	if _, err := chromedp.Call(a.ctx, webauthn.RemoveCredential,
		webauthn.RemoveCredentialParams{AuthenticatorID: a.id, CredentialID: c.CredentialID}); err != nil {
		a.t.Fatalf("WebAuthn.removeCredential: %v", err)
	}
	params := map[string]any{
		"authenticatorId": string(a.id),
		"credential": map[string]any{
			"credentialId":         base64.StdEncoding.EncodeToString(c.CredentialID),
			"isResidentCredential": c.IsResidentCredential,
			"rpId":                 c.RpID,
			"privateKey":           base64.StdEncoding.EncodeToString(c.PrivateKey),
			"userHandle":           base64.StdEncoding.EncodeToString(c.UserHandle),
			"signCount":            signCount,
		},
	}
	err := chromedp.Do(a.ctx, func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		return chromedp.Void{}, t.Call(ctx, webauthn.CommandAddCredential, params, nil)
	})
	if err != nil {
		a.t.Fatalf("WebAuthn.addCredential: %v", err)
	}
}

func (a *authenticator) remove() {
	a.t.Helper()
	if _, err := chromedp.Call(a.ctx, webauthn.RemoveVirtualAuthenticator,
		webauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: a.id}); err != nil {
		a.t.Fatalf("WebAuthn.removeVirtualAuthenticator: %v", err)
	}
}

// page drives the account page of one stack.
type page struct {
	t   *testing.T
	ctx context.Context
}

func (p page) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", step, err)
	}
}

func (p page) eval(expr string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		p.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// open signs in on the account page at url with token.
func (p page) open(url, token string) {
	p.t.Helper()
	p.do("open the account page",
		chromedp.Navigate(url+"/account/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("account")),
	)
}

// addPasskey clicks "Add a passkey" and waits for the answer: "" when a webauthn row
// appeared, else the refusal's code.
func (p page) addPasskey() string {
	p.t.Helper()
	rows := p.eval(`String(document.querySelectorAll('#factor-list tr[data-kind="webauthn"]').length)`)
	p.do("add a passkey", chromedp.Click(chromedp.ID("passkey-add")))
	p.do("wait for the answer", chromedp.Poll[chromedp.Void](
		`document.querySelectorAll('#factor-list tr[data-kind="webauthn"]').length != `+rows+
			` || !document.getElementById('error').hidden`, chromedp.WithPollingInterval(50*time.Millisecond)))
	if p.eval(`String(document.getElementById('error').hidden)`) == "true" {
		return ""
	}
	return p.eval(`document.getElementById('error').dataset.code`)
}

// trySignIn clicks "Sign in with a passkey" and returns the answer's code (OK on
// success) and text.
func (p page) trySignIn() (string, string) {
	p.t.Helper()
	p.eval(`document.getElementById('signin-result').dataset.code = ''; 'reset'`)
	p.do("sign in with the passkey", chromedp.Click(chromedp.ID("signin-test")))
	p.do("wait for the sign-in", chromedp.Poll[chromedp.Void](`document.getElementById('signin-result').dataset.code !== ''`,
		chromedp.WithPollingInterval(50*time.Millisecond)))
	return p.eval(`document.getElementById('signin-result').dataset.code`), p.eval(`document.getElementById('signin-result').textContent`)
}

func (p page) screenshot(name string) {
	p.t.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(artifactsDir(p.t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s", path)
}

func TestAccountPageWebAuthnInBrowser(t *testing.T) {
	ctx := browser(t)
	var (
		mu       sync.Mutex
		problems []string
	)
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			switch m.Type {
			case chromedp.ConsoleError, chromedp.ConsoleWarning, chromedp.ConsoleException:
				// The refusals below answer 400 and 403 on purpose.
				if m.Source == "network" && (strings.Contains(m.Text, "status of 400") || strings.Contains(m.Text, "status of 403")) {
					continue
				}
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	p := page{t: t, ctx: ctx}

	// A policy of device-bound keys only.
	s, url := accountStack(t, channels.WebAuthnPolicy{RefuseSynced: true})
	key := addAuthenticator(t, ctx, false)
	p.open(url, s.token("alice"))
	if n := p.eval(`String(document.querySelectorAll('#factor-list tr').length)`); n != "0" {
		t.Fatalf("%s factors before any was added", n)
	}

	// Register a security key: it is alice's first strong factor, so backup codes.
	if code := p.addPasskey(); code != "" {
		t.Fatalf("registering a security key: %s %s", code, p.eval(`document.getElementById('error').textContent`))
	}
	if codes := p.eval(`String(document.querySelectorAll('#backup-codes li').length)`); codes != "10" {
		t.Errorf("%s backup codes shown, want 10", codes)
	}
	creds := key.credentials()
	if len(creds) != 1 || creds[0].RpID != "localhost" {
		t.Fatalf("the authenticator holds %+v", creds)
	}

	// Sign in twice.
	for i := range 2 {
		code, text := p.trySignIn()
		if code != "OK" || !strings.Contains(text, "webauthn") || !strings.Contains(text, "verified") {
			t.Fatalf("sign-in %d: %s %q", i+1, code, text)
		}
	}
	p.screenshot("account-en.png")

	// A bogus signature is refused.
	key.bogusSignatures(true)
	if code, _ := p.trySignIn(); code != mfa.CodeInvalidCredential {
		t.Fatalf("a bogus signature: %s", code)
	}
	key.bogusSignatures(false)

	// A cloned key, the same private key with a lower counter, is refused and flags the
	// credential.
	creds = key.credentials()
	if creds[0].SignCount < 3 {
		t.Fatalf("the key's counter is %v after three assertions", creds[0].SignCount)
	}
	key.clone(creds[0], 0)
	if code, _ := p.trySignIn(); code != mfa.CodeInvalidCredential {
		t.Fatalf("a cloned key: %s", code)
	}
	if flagged := p.eval(`document.querySelector('#factor-list tr[data-kind="webauthn"]').dataset.flagged`); flagged != "true" {
		t.Errorf("the credential is not shown flagged: %s", flagged)
	}
	var flaggedAt int64
	if err := s.DB.QueryRow("SELECT coalesce(flagged_at, 0) FROM webauthn_credentials").Scan(&flaggedAt); err != nil || flaggedAt == 0 {
		t.Errorf("flagged_at %d, %v", flaggedAt, err)
	}
	if types, _ := s.events("alice"); countOf(types, mfa.EventWebAuthnFlagged) != 1 || countOf(types, mfa.EventVerifySucceeded) != 2 ||
		countOf(types, mfa.EventVerifyFailed) != 2 {
		t.Errorf("events %v", types)
	}
	p.screenshot("account-flagged.png")

	// A synced passkey is refused under this policy…
	key.remove()
	synced := addAuthenticator(t, ctx, true)
	if code := p.addPasskey(); code != mfa.CodeCredentialNotAllowed {
		t.Fatalf("a synced passkey under --webauthn-allow-synced=false: %q", code)
	}

	// …and accepted under the default one, where it signs in.
	s2, url2 := accountStack(t, channels.WebAuthnPolicy{})
	p.open(url2, s2.token("bob"))
	if code := p.addPasskey(); code != "" {
		t.Fatalf("a synced passkey under the default policy: %s %s", code, p.eval(`document.getElementById('error').textContent`))
	}
	if code, text := p.trySignIn(); code != "OK" {
		t.Fatalf("sign-in with the synced passkey: %s %q", code, text)
	}
	list := s2.as("bob", http.MethodGet, "/api/v1/mfa/webauthn/devices", "")
	if get(list.Body, "data", "devices", 0, "backup_eligible") != true || get(list.Body, "data", "devices", 0, "backup_state") != true {
		t.Errorf("the synced passkey's flags: %s", list.Raw)
	}
	_ = synced

	// An authenticator app from the QR code's page: the key it shows gives the code.
	p.do("start a TOTP setup", chromedp.Click(chromedp.ID("totp-start")), chromedp.WaitVisible(chromedp.ID("totp-setup")))
	if src := p.eval(`document.getElementById('totp-qr').src`); !strings.HasPrefix(src, "data:image/png;base64,") {
		t.Fatalf("QR code %.40s…", src)
	}
	secret := strings.ReplaceAll(p.eval(`document.getElementById('totp-secret').textContent`), " ", "")
	p.do("verify the TOTP code",
		chromedp.SendKeys(chromedp.ID("totp-code"), codeAt(t, secret, s2.Clock.Now())),
		chromedp.Click(chromedp.ID("totp-verify")),
		chromedp.WaitVisible(chromedp.CSS(`#factor-list tr[data-kind="totp"]`)))

	// Removing the passkey from the page removes it, and only it.
	p.do("remove the passkey", chromedp.Click(chromedp.CSS(`#factor-list tr[data-kind="webauthn"] button.remove`)))
	p.do("wait for the removal", chromedp.Poll[chromedp.Void](`document.querySelectorAll('#factor-list tr[data-kind="webauthn"]').length === 0`,
		chromedp.WithPollingInterval(50*time.Millisecond)))
	if n := p.eval(`String(document.querySelectorAll('#factor-list tr[data-kind="totp"]').length)`); n != "1" {
		t.Errorf("%s TOTP rows after removing the passkey", n)
	}
	if types, _ := s2.events("bob"); countOf(types, mfa.EventWebAuthnRemoved) != 1 || countOf(types, mfa.EventTOTPDeviceVerified) != 1 {
		t.Errorf("bob's events %v", types)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(problems, "\n"))
	}
}
