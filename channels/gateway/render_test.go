package gateway

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
)

var testNow = time.Date(2026, 3, 14, 9, 26, 0, 0, time.UTC)

func testRenderer(t *testing.T) *renderer {
	t.Helper()
	r, err := newRenderer("Acme Bank")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRenderEveryTemplate renders each template in each language for both channels:
// every part is there, names the service, carries the code where there is one, and is
// in the language asked for.
func TestRenderEveryTemplate(t *testing.T) {
	r := testRenderer(t)
	// A word each language's texts use and the other's do not, per template.
	marker := map[string][2]string{
		"mfa_channel_code":             {"expires in 5 minutes", "Caduca en 5 minutos"},
		"mfa_signin_code":              {"sign", "sesión"},
		"mfa_method_added":             {"was added", "Se ha añadido"},
		"mfa_method_removed":           {"was removed", "Se ha quitado"},
		"mfa_disabled":                 {"turned off", "desactivado"},
		"mfa_backup_codes_regenerated": {"backup codes", "códigos de respaldo"},
		"mfa_locked":                   {"until 09:31 UTC", "hasta las 09:31 UTC"},
		"mfa_credential_flagged":       {"blocked it", "hemos bloqueado"},
	}
	if len(marker) != len(mfa.NotificationTemplates) {
		t.Fatalf("the test knows %d templates, the gateway %d", len(marker), len(mfa.NotificationTemplates))
	}
	for _, name := range mfa.NotificationTemplates {
		for li, lang := range []string{"en", "es"} {
			n := Notification{To: "+34600111222", UserID: "alice", Template: name, Lang: lang,
				ExpiresAt: testNow.Add(5 * time.Minute).Format(time.RFC3339), Changed: "totp.remove"}
			if withCode[name] {
				n.Code = "493817"
			}
			t.Run(name+"/"+lang, func(t *testing.T) {
				sms, err := r.render(ChannelSMS, n, testNow)
				if err != nil {
					t.Fatal(err)
				}
				n.To = "alice@example.com"
				mail, err := r.render(ChannelEmail, n, testNow)
				if err != nil {
					t.Fatal(err)
				}
				if sms.Subject != "" || sms.HTML != "" || sms.Lang != lang || mail.Lang != lang {
					t.Fatalf("an SMS has only a text, in its language: %+v", sms)
				}
				parts := map[string]string{"sms": sms.Text, "subject": mail.Subject, "text": mail.Text, "html": mail.HTML}
				for part, s := range parts {
					if strings.TrimSpace(s) == "" || strings.Contains(s, "<no value>") {
						t.Fatalf("%s is empty or incomplete: %q", part, s)
					}
					if part != "sms" && !strings.Contains(s, "Acme Bank") && part != "text" {
						t.Fatalf("%s does not name the service: %q", part, s)
					}
					if withCode[name] && part != "subject" && !strings.Contains(s, n.Code) {
						t.Fatalf("%s does not carry the code: %q", part, s)
					}
					if part == "subject" && n.Code != "" && strings.Contains(s, n.Code) {
						t.Fatalf("the subject shows the code on a lock screen: %q", s)
					}
				}
				for _, s := range []string{sms.Text, mail.Text, mail.HTML} {
					if want := marker[name][li]; !strings.Contains(s, want) {
						t.Fatalf("%q lacks %q", s, want)
					}
					if other := marker[name][1-li]; strings.Contains(s, other) {
						t.Fatalf("%q is in the other language (%q)", s, other)
					}
				}
				if !strings.HasPrefix(mail.HTML, "<!DOCTYPE html>") || !strings.Contains(mail.HTML, `<html lang="`+lang+`">`) {
					t.Fatalf("HTML body: %.120s", mail.HTML)
				}
				if strings.Contains(mail.Subject, "\n") {
					t.Fatalf("subject spans lines: %q", mail.Subject)
				}
			})
		}
	}
}

// TestRenderChanged: a security notice says what changed, from the command the worker
// names, in the reader's language; an unknown command still gives a true sentence.
func TestRenderChanged(t *testing.T) {
	r := testRenderer(t)
	cases := []struct {
		template, changed, lang, want string
	}{
		{"mfa_method_added", "totp.verify", "en", "An authenticator app was added"},
		{"mfa_method_added", "channel.validate", "en", "A phone number or e-mail address for codes was added"},
		{"mfa_method_added", "signin.enable", "en", "A second factor was added"},
		{"mfa_method_added", "totp.verify", "es", "Se ha añadido una app de autenticación"},
		{"mfa_method_removed", "totp.remove", "en", "An authenticator app was removed"},
		{"mfa_method_removed", "secret.remove", "en", "Your authenticator apps were removed"},
		{"mfa_method_removed", "channel.delete", "es", "Se ha quitado un teléfono o correo"},
		{"mfa_method_removed", "admin.reset", "en", "An administrator removed every second factor"},
		{"mfa_method_removed", "", "en", "A second factor was removed"},
		{"mfa_method_removed", "something.new", "es", "Se ha quitado un segundo factor"},
	}
	for _, tc := range cases {
		t.Run(tc.template+"/"+tc.changed+"/"+tc.lang, func(t *testing.T) {
			n := Notification{To: "+34600111222", Template: tc.template, Lang: tc.lang, Changed: tc.changed}
			m, err := r.render(ChannelSMS, n, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(m.Text, tc.want) {
				t.Fatalf("%q lacks %q", m.Text, tc.want)
			}
		})
	}
}

// TestRenderLocked: a lock that ends by itself says when; one without an end (the
// workers lock until an administrator resets) says who lifts it.
func TestRenderLocked(t *testing.T) {
	r := testRenderer(t)
	cases := []struct {
		lang, expires string
		want          []string
	}{
		{"en", testNow.Add(time.Hour).Format(time.RFC3339), []string{"until 10:26 UTC", "wait and try again"}},
		{"en", "", []string{"until support unlocks your account", "contact support"}},
		{"es", testNow.Add(time.Hour).Format(time.RFC3339), []string{"hasta las 10:26 UTC", "espera y vuelve"}},
		{"es", "", []string{"hasta que soporte desbloquee tu cuenta", "contacta con soporte"}},
	}
	for _, tc := range cases {
		t.Run(tc.lang+"/"+tc.expires, func(t *testing.T) {
			m, err := r.render(ChannelEmail, Notification{To: "a@example.com", Template: "mfa_locked", Lang: tc.lang, ExpiresAt: tc.expires}, testNow)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{m.Text, m.HTML} {
				for _, w := range tc.want {
					if !strings.Contains(s, w) {
						t.Errorf("%q lacks %q", s, w)
					}
				}
			}
		})
	}
}

func TestRenderRefuses(t *testing.T) {
	r := testRenderer(t)
	cases := []struct {
		name    string
		n       Notification
		unknown bool
	}{
		{"unknown template", Notification{To: "+34600111222", Template: "mfa_fax_code", Code: "123456"}, true},
		{"code template without a code", Notification{To: "+34600111222", Template: "mfa_signin_code"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.render(ChannelSMS, tc.n, testNow)
			if err == nil || errors.Is(err, errUnknownTemplate) != tc.unknown {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// TestRenderLanguageAndExpiry: a language without templates is written in English, and
// the time left is whole minutes rounded up, never zero.
func TestRenderLanguageAndExpiry(t *testing.T) {
	r := testRenderer(t)
	cases := []struct {
		lang string
		left time.Duration
		want string
	}{
		{"fr", 5 * time.Minute, "expires in 5 minutes"},
		{"", 5 * time.Minute, "expires in 5 minutes"},
		{"en", 4*time.Minute + time.Second, "expires in 5 minutes"},
		{"en", 10 * time.Second, "expires in 1 minute."},
		{"es", 59 * time.Second, "Caduca en 1 minuto."},
		{"es", 2 * time.Minute, "Caduca en 2 minutos."},
	}
	for _, tc := range cases {
		t.Run(tc.lang+"/"+tc.left.String(), func(t *testing.T) {
			n := Notification{To: "+34600111222", Template: "mfa_signin_code", Code: "111111", Lang: tc.lang,
				ExpiresAt: testNow.Add(tc.left).Format(time.RFC3339)}
			m, err := r.render(ChannelSMS, n, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(m.Text, tc.want) {
				t.Fatalf("%q lacks %q", m.Text, tc.want)
			}
		})
	}
}

// TestHTMLIsEscaped: the HTML body escapes what it is given; the service name is an
// operator's setting, but nothing from a message may become markup.
func TestHTMLIsEscaped(t *testing.T) {
	r, err := newRenderer(`<b>Acme</b> & "Co"`)
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.render(ChannelEmail, Notification{To: "a@example.com", Template: "mfa_disabled", Lang: "en"}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(m.HTML, "<b>Acme</b>") || !strings.Contains(m.HTML, "&lt;b&gt;Acme&lt;/b&gt; &amp; &#34;Co&#34;") {
		t.Fatalf("HTML does not escape the service name: %s", m.HTML)
	}
}

// TestTemplatesCoverTheWorkers: the gateway renders mfa.NotificationTemplates, and
// that list holds every template the module defines (the workers name templates only
// by those constants, and no template name is written anywhere else).
func TestTemplatesCoverTheWorkers(t *testing.T) {
	listed := map[string]bool{}
	for _, n := range mfa.NotificationTemplates {
		listed[n] = true
	}
	src, err := os.ReadFile("../../notification.go")
	if err != nil {
		t.Fatal(err)
	}
	defined := regexp.MustCompile(`(?m)^\s*Template\w+\s*=\s*"(mfa_[a-z_]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(defined) < 8 {
		t.Fatalf("found %d template constants in notification.go: has the notification code moved?", len(defined))
	}
	for _, m := range defined {
		if !listed[m[1]] {
			t.Errorf("template %s is defined but not in mfa.NotificationTemplates, so the gateway does not render it", m[1])
		}
	}
	// Nowhere else in the module is a template named by its string.
	literal := regexp.MustCompile(`"(mfa_[a-z_]+)"`)
	err = filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") ||
			filepath.Base(path) == "notification.go" && filepath.Dir(path) == "../.." {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range literal.FindAllStringSubmatch(string(b), -1) {
			if listed[m[1]] {
				t.Errorf("%s names template %s by its string: use the mfa.Template constant", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
