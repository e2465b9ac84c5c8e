package handlers_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	mfa "github.com/mfad/mfad"
)

// The dashboard in a real browser: headless Debian Chromium, driven over the DevTools
// protocol, against the whole stack (NATS, worker on SQLite, relay, HTTP). A security
// engineer signs in with an admin token, a user removes a TOTP device through the API,
// and the removal shows up in the live feed without a reload.

// chromiumPath finds Debian's chromium. Without it the test is skipped, except in CI
// (CI=true), where .ci/run installs it and a skip would hide a broken setup.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; CI must run the browser test (.ci/run installs the chromium package)")
	}
	t.Skip("chromium is not installed (apt-get install chromium): skipping the browser test")
	return ""
}

// browserTab starts headless Chromium with a window of width×height and returns a tab,
// closed when the test ends. The flags are what a root process in this sandbox needs:
// no sandbox (root), no GPU, and none of Chromium's own network traffic (updates,
// sync, QUIC probes), which the closed network refuses; a fresh profile, so no state
// leaks between runs.
func browserTab(t *testing.T, width, height int) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
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
		chromedp.WindowSize(width, height),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	// The first call starts the browser, whose life is that call's context: it gets no
	// deadline of its own (the tests' steps do), so a browser that never comes up is
	// killed by this timer instead of hanging the test.
	startup := time.AfterFunc(30*time.Second, cancelAlloc)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	startup.Stop()
	return tab
}

// artifactsDir is where screenshots go: $ARTIFACTS_DIR, else artifacts/ at the
// repository root (ignored by git).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ARTIFACTS_DIR")
	if dir == "" {
		dir = filepath.Join("..", "artifacts")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestDashboardInBrowser(t *testing.T) {
	chromiumPath(t) // skip (or, in CI, fail) before setting anything up
	s, _ := newDashStack(t)

	// Something to look at before signing in: alice and bob enrolled, bob locked out
	// by five wrong codes, a device to remove later.
	phone := s.enrol("alice", "Phone")
	s.enrol("alice", "Laptop")
	s.enrol("bob", "Tablet")
	for range 5 {
		s.as("bob", http.MethodPost, "/api/v1/mfa/verify", `{"code":"000000"}`)
	}
	admin := s.adminToken()

	browser := browserTab(t, 1440, 900)
	ctx, cancel := context.WithTimeout(browser, 45*time.Second)
	defer cancel()

	// Any script error, console warning (a missing translation warns) or failed load
	// fails the test, except the 403 of the refused sign-in below, which is expected.
	var (
		mu       sync.Mutex
		problems []string
	)
	console := chromedp.Console(browser)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			switch m.Type {
			case chromedp.ConsoleError, chromedp.ConsoleWarning, chromedp.ConsoleException:
				if m.Source == "network" && strings.Contains(m.Text, "status of 403") {
					continue
				}
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return v
	}

	// The page opens on the sign-in form and shows no data.
	do("open the dashboard",
		chromedp.Navigate(s.URL+"/dashboard"),
		chromedp.WaitVisible(chromedp.ID("token")),
	)
	if h := text("#signin h1"); h != "Sign in to the MFA dashboard" || eval(`String(document.getElementById('dash').hidden)`) != "true" {
		t.Fatalf("before sign-in: heading %q, dashboard hidden %s", h, eval(`String(document.getElementById('dash').hidden)`))
	}

	// A token without the admin scope is refused on the form.
	do("sign in without the admin scope",
		chromedp.SendKeys(chromedp.ID("token"), s.token("alice")),
		chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("signin-error")),
	)
	if got := text("#signin-error"); got != "This token does not have the mfa:admin scope." {
		t.Fatalf("non-admin refusal: %q", got)
	}

	// The admin signs in; the feed connects.
	do("sign in as admin",
		chromedp.SendKeys(chromedp.ID("token"), admin),
		chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("dash")),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="live"]`)),
	)
	if totp, locked, who := text("#kind-totp"), text("#lock-count"), text("#lock-list .who"); totp != "3" || locked != "1" || who != "bob" {
		t.Errorf("stats on the page: %s TOTP devices, %s locked (%s); want 3, 1 (bob)", totp, locked, who)
	}
	if stored, href := eval(`sessionStorage.getItem('mfad.dashboard.token')`), eval(`location.href`); stored != admin || strings.Contains(href, admin) {
		t.Errorf("token: in sessionStorage %v, in the URL %v", stored == admin, strings.Contains(href, admin))
	}

	// The removal, through the API as the user would, arrives in the open page.
	r := s.as("alice", http.MethodDelete, "/api/v1/mfa/totp/devices/"+itoa(phone.ID), "")
	want(t, r, http.StatusOK, "")
	removed := `#feed-body tr[data-type="` + mfa.EventTOTPDeviceRemoved + `"]`
	do("see the removal in the feed", chromedp.WaitVisible(chromedp.CSS(removed)))
	if user, summary := text(removed+" td.user"), text(removed+" td.summary"); user != "alice" || summary == "" {
		t.Fatalf("removal row: user %q, summary %q", user, summary)
	}
	if top := eval(`document.querySelector('#feed-body tr').dataset.type`); top != mfa.EventTOTPDeviceRemoved {
		t.Errorf("top row is %s, want the removal", top)
	}
	// The counters follow the feed without waiting for their next tick.
	do("see the removal counted", chromedp.WaitVisible(chromedp.CSS(`#chart g[data-type="`+mfa.EventTOTPDeviceRemoved+`"]:not(.zero)`)))
	if n := text("#kind-totp"); n != "2" {
		t.Errorf("%s TOTP devices after the removal, want 2", n)
	}

	dir := artifactsDir(t)
	shot := func(name string) {
		t.Helper()
		// End the new row's highlight now rather than wait for it: the picture shows
		// the page as a person sees it a moment later.
		eval(`document.getAnimations().filter((a) => a.effect.getComputedTiming().endTime !== Infinity).forEach((a) => a.finish()); 'done'`)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
	shot("dashboard-en.png")

	// The language switch turns every text Spanish, event names included.
	do("switch to Spanish", chromedp.Click(chromedp.ID("lang-es")))
	if out, what, conn := text("#signout"), text(removed+" .what"), text("#conn-text"); out != "Salir" || what != "Dispositivo TOTP eliminado" || conn != "En directo" {
		t.Errorf("Spanish page: %q %q %q", out, what, conn)
	}
	shot("dashboard-es.png")

	// Signing out forgets the token and the data.
	do("sign out",
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("token")),
	)
	if stored := eval(`sessionStorage.getItem('mfad.dashboard.token') || ''`); stored != "" {
		t.Error("the token is still in sessionStorage after signing out")
	}
	if rows := eval(`String(document.querySelectorAll('#feed-body tr').length)`); rows != "0" {
		t.Errorf("%s feed rows left after signing out", rows)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(problems, "\n"))
	}
}
