package handlers_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
	"github.com/mfad/mfad/activity/natstest"
)

// SMS and e-mail channels through HTTP, end to end: the stack's worker hands codes to
// MFA_NOTIFY and a test subscriber plays the gateway, as a real one would.

// notice is one message on mfa.notify.sms|email as the gateway reads it (API.md §4).
type notice struct {
	Subject   string `json:"-"`
	To        string `json:"to"`
	UserID    string `json:"user_id"`
	Template  string `json:"template"`
	Code      string `json:"code"`
	Lang      string `json:"lang"`
	ExpiresAt string `json:"expires_at"`
}

// noticeMembers are the members API.md §4 gives a notification, plus "changed" that
// names what a security notice is about.
var noticeMembers = []string{"to", "user_id", "template", "code", "lang", "expires_at", "changed"}

// gateway is the SMS/e-mail gateway: its own NATS client, subscribed to mfa.notify.>.
type gateway struct {
	t    testing.TB
	msgs chan *nats.Msg
}

func newGateway(t testing.TB, s *stack) *gateway {
	t.Helper()
	nc := natstest.Connect(t, s.NATSURL)
	// MFA_NOTIFY must exist, as mfad serve makes sure it does: without it no publish is
	// acknowledged and the outbox relay sends every message again each second.
	natstest.JetStream(t, nc)
	g := &gateway{t: t, msgs: make(chan *nats.Msg, 256)}
	if _, err := nc.ChanSubscribe(activity.NotifySubjects, g.msgs); err != nil {
		t.Fatal(err)
	}
	// The subscription is in place on the server before anything is sent.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return g
}

// next is the next message, which must be on subject.
func (g *gateway) next(subject string) notice {
	g.t.Helper()
	select {
	case m := <-g.msgs:
		var raw map[string]any
		if err := json.Unmarshal(m.Data, &raw); err != nil {
			g.t.Fatalf("notification on %s is not a JSON object: %v\n%s", m.Subject, err, m.Data)
		}
		for k := range raw {
			if !slices.Contains(noticeMembers, k) {
				g.t.Errorf("notification has undocumented member %q: %s", k, m.Data)
			}
		}
		var n notice
		if err := json.Unmarshal(m.Data, &n); err != nil {
			g.t.Fatalf("notification on %s: %v\n%s", m.Subject, err, m.Data)
		}
		n.Subject = m.Subject
		if m.Subject != subject {
			g.t.Fatalf("notification on %s, want %s: %s", m.Subject, subject, m.Data)
		}
		return n
	case <-time.After(10 * time.Second):
		g.t.Fatalf("no notification on %s within 10s", subject)
	}
	return notice{}
}

// added checks the security notice of a factor added, sent to the new channel at to
// (NIST SP 800-63B: the user hears of every binding change).
func (g *gateway) added(subject, to string) {
	g.t.Helper()
	n := g.next(subject)
	if n.To != to || n.Template != "mfa_method_added" || n.Code != "" {
		g.t.Fatalf("notification %+v, want mfa_method_added to %s without a code", n, to)
	}
}

// quiet checks that nothing more was sent. The outbox relay runs right after each
// commit, so a short wait after the last answer is enough to see a stray message.
func (g *gateway) quiet() {
	g.t.Helper()
	select {
	case m := <-g.msgs:
		g.t.Fatalf("unexpected notification on %s: %s", m.Subject, m.Data)
	case <-time.After(300 * time.Millisecond):
	}
}

// oneTimeCode checks a notification carrying a fresh code for to and returns the code.
func (n notice) oneTimeCode(t testing.TB, s *stack, user, to, template, lang string) string {
	t.Helper()
	want := s.Clock.Now().Add(5 * time.Minute).UTC().Format(time.RFC3339)
	if n.To != to || n.UserID != user || n.Template != template || n.Lang != lang || n.ExpiresAt != want {
		t.Fatalf("notification %+v, want to %s, user %s, template %s, lang %s, expires_at %s", n, to, user, template, lang, want)
	}
	if len(n.Code) != 6 || strings.Trim(n.Code, "0123456789") != "" {
		t.Fatalf("code %q is not six digits", n.Code)
	}
	return n.Code
}

// otherCode is a well-formed code that is not code.
func otherCode(code string) string {
	n, _ := strconv.Atoi(code)
	return strconv.Itoa(100000 + (n+1)%900000)
}

// auditedTypes are the types of the user's audit records, oldest first.
func auditedTypes(t testing.TB, s *stack, user string) []string {
	t.Helper()
	rows, err := s.DB.Query("SELECT type FROM audit_log WHERE user_id = ? ORDER BY seq", user)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ string
		if err := rows.Scan(&typ); err != nil {
			t.Fatal(err)
		}
		out = append(out, typ)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// occurrences counts typ in types.
func occurrences(types []string, typ string) int {
	n := 0
	for _, v := range types {
		if v == typ {
			n++
		}
	}
	return n
}

// mfaStatus is GET /api/v1/mfa/status for user.
func mfaStatus(t testing.TB, s *stack, user string) map[string]any {
	t.Helper()
	r := s.as(user, http.MethodGet, "/api/v1/mfa/status", "")
	if r.Status != http.StatusOK {
		t.Fatalf("status: %d %s", r.Status, r.Raw)
	}
	return r.Body["data"].(map[string]any)
}

// smsChannel sets up user's SMS channel through DruID update and validate, from the
// entry point from, and returns the gateway's copy of the code it confirmed with.
func smsChannel(t testing.TB, s *stack, g *gateway, user, phone, from string) {
	t.Helper()
	r := s.druid(user, activity.VerbUpdate, druidActivity(user, activity.VerbUpdate, "sms", "mfa_channel_address", phone), "From", from)
	checkDruid(t, r, http.StatusOK, "MFA channel registered, verification code sent")
	code := g.next(activity.NotifySMS).oneTimeCode(t, s, user, phone, "mfa_channel_code", "en")
	r = s.druid(user, activity.VerbValidate, druidActivity(user, activity.VerbValidate, "sms", "mfa_code", code), "From", from)
	checkDruid(t, r, http.StatusOK, "MFA channel validated")
	g.added(activity.NotifySMS, phone)
}

// TestSMSChannelThroughDruID is the end-to-end test: a code reaches the gateway
// after DruID update, validating with it makes the SMS channel a method, and DruID
// delete removes it and tells the number it was removed.
func TestSMSChannelThroughDruID(t *testing.T) {
	s := newStack(t)
	g := newGateway(t, s)
	const phone = "+34600111222"

	r := s.druid("alice", activity.VerbUpdate, druidActivity("alice", activity.VerbUpdate, "sms", "mfa_channel_address", phone),
		"Accept-Language", "es")
	checkDruid(t, r, http.StatusOK, "Canal MFA registrado, código de verificación enviado")
	code := g.next(activity.NotifySMS).oneTimeCode(t, s, "alice", phone, "mfa_channel_code", "es")

	// A registration waiting for its code is not a method anywhere (API.md §0).
	st := mfaStatus(t, s, "alice")
	if st["enabled"] != false || len(st["methods"].([]any)) != 0 {
		t.Fatalf("a pending channel shows in the status: %v", st)
	}

	r = s.druid("alice", activity.VerbValidate, druidActivity("alice", activity.VerbValidate, "sms", "mfa_code", code))
	checkDruid(t, r, http.StatusOK, "MFA channel validated")
	g.added(activity.NotifySMS, phone)

	st = mfaStatus(t, s, "alice")
	if st["enabled"] != true || len(st["methods"].([]any)) != 1 || get(st, "methods", 0, "type") != "sms" ||
		get(st, "methods", 0, "destination") != "+34******222" || get(st, "methods", 0, "voluntary") != true {
		t.Fatalf("status after validate: %v", st)
	}
	r = s.as("alice", http.MethodGet, "/settings/Mfa", "")
	if r.Status != http.StatusOK || get(r.Body, "mfaSignInEnabled") != true || get(r.Body, "methods", 0, "type") != "sms" ||
		get(r.Body, "methods", 0, "label") != "+34******222" || get(r.Body, "methods", 0, "voluntary") != true {
		t.Fatalf("settings after validate: %d %s", r.Status, r.Raw)
	}

	r = s.druid("alice", activity.VerbDelete, druidActivity("alice", activity.VerbDelete, "sms"))
	checkDruid(t, r, http.StatusOK, "MFA channel deleted")
	n := g.next(activity.NotifySMS)
	if n.To != phone || n.UserID != "alice" || n.Template != "mfa_method_removed" || n.Code != "" {
		t.Fatalf("security notice %+v, want mfa_method_removed to %s without a code", n, phone)
	}
	g.quiet()
	st = mfaStatus(t, s, "alice")
	if st["enabled"] != false || len(st["methods"].([]any)) != 0 {
		t.Fatalf("status after delete: %v", st)
	}

	want := []string{mfa.EventChannelRegistered, mfa.EventChannelCodeSent, mfa.EventChannelVerified, mfa.EventSignInEnabled,
		mfa.EventChannelDeleted, mfa.EventSignInDisabled}
	if got := auditedTypes(t, s, "alice"); !slices.Equal(got, want) {
		t.Fatalf("audit log %v, want %v", got, want)
	}
	// Events and logs carry the masked number only.
	var bodies []byte
	rows, err := s.DB.Query("SELECT body FROM audit_log")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b...)
	}
	rows.Close()
	if bytes.Contains(bodies, []byte(phone)) || bytes.Contains(bodies, []byte(phone[1:])) {
		t.Fatalf("the phone number is in clear in the audit log")
	}
	if !bytes.Contains(bodies, []byte("+34******222")) {
		t.Fatalf("the audit log does not name the channel by its masked number")
	}
}

// TestEmailChannelThroughBanking registers and confirms an e-mail channel with the
// banking dialect, then removes it with DruID.
func TestEmailChannelThroughBanking(t *testing.T) {
	s := newStack(t)
	g := newGateway(t, s)
	const email = "alice@example.com"

	// Field checks come before anything is sent.
	for _, tc := range []struct{ body, field string }{
		{`{"mfaMethod":"email"}`, "email"},
		{`{"mfaMethod":"email","email":"alice"}`, "email"},
		{`{"mfaMethod":"email","phoneNumber":"+34600111222"}`, "email"},
		{`{"mfaMethod":"sms","phoneNumber":"600111222"}`, "phoneNumber"},
		{`{"mfaMethod":"sms","email":"alice@example.com"}`, "phoneNumber"},
		{`{"mfaMethod":"email","email":"alice@example.com","code":"12345"}`, "code"},
		// An empty code is not a request for another (paid) message.
		{`{"mfaMethod":"sms","phoneNumber":"+34600111222","code":""}`, "code"},
	} {
		r := s.as("alice", http.MethodPost, "/settings/MfaSignIn", tc.body)
		if r.Status != http.StatusBadRequest || get(r.Body, "code") != mfa.CodeValidation ||
			get(r.Body, "invalid-params", 0, "name") != tc.field {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.body, r.Status, r.Raw, tc.field)
		}
	}

	// A code with nothing registered is this dialect's "nothing to check it against",
	// not the device dialect's TOTP setup.
	r := s.as("alice", http.MethodPost, "/settings/MfaSignIn", `{"mfaMethod":"email","email":"`+email+`","code":"123456"}`)
	if r.Status != http.StatusBadRequest || get(r.Body, "code") != mfa.CodeNoPendingSecret ||
		strings.Contains(string(r.Raw), "TOTP") {
		t.Fatalf("confirm with nothing registered: %d %s", r.Status, r.Raw)
	}

	r = s.as("alice", http.MethodPost, "/settings/MfaSignIn", `{"mfaMethod":"email","email":"`+email+`"}`)
	if r.Status != http.StatusOK || len(r.Body) != 1 || r.Body["status"] != "verification_sent" {
		t.Fatalf("register e-mail: %d %s", r.Status, r.Raw)
	}
	code := g.next(activity.NotifyEmail).oneTimeCode(t, s, "alice", email, "mfa_channel_code", "en")

	r = s.as("alice", http.MethodPost, "/settings/MfaSignIn", `{"mfaMethod":"email","email":"`+email+`","code":"`+otherCode(code)+`"}`)
	if r.Status != http.StatusBadRequest || get(r.Body, "code") != mfa.CodeInvalidCode {
		t.Fatalf("wrong code: %d %s", r.Status, r.Raw)
	}
	r = s.as("alice", http.MethodPost, "/settings/MfaSignIn", `{"mfaMethod":"email","email":"`+email+`","code":"`+code+`"}`)
	if r.Status != http.StatusOK || get(r.Body, "status") != "enabled" || get(r.Body, "mfaSignInEnabled") != true ||
		get(r.Body, "backupCodes") != nil {
		t.Fatalf("confirm e-mail: %d %s", r.Status, r.Raw)
	}
	g.added(activity.NotifyEmail, email)
	r = s.as("alice", http.MethodGet, "/settings/Mfa", "")
	if r.Status != http.StatusOK || get(r.Body, "mfaSignInEnabled") != true || get(r.Body, "methods", 0, "type") != "email" ||
		get(r.Body, "methods", 0, "label") != "a****@example.com" || get(r.Body, "methods", 0, "verified") != true {
		t.Fatalf("settings: %d %s", r.Status, r.Raw)
	}
	// The code is spent: confirming again with it fails.
	r = s.as("alice", http.MethodPost, "/settings/MfaSignIn", `{"mfaMethod":"email","email":"`+email+`","code":"`+code+`"}`)
	if r.Status != http.StatusBadRequest || get(r.Body, "code") != mfa.CodeNoPendingSecret {
		t.Fatalf("a spent registration code: %d %s", r.Status, r.Raw)
	}

	r = s.druid("alice", activity.VerbDelete, druidActivity("alice", activity.VerbDelete, "email"))
	checkDruid(t, r, http.StatusOK, "MFA channel deleted")
	n := g.next(activity.NotifyEmail)
	if n.To != email || n.Template != "mfa_method_removed" || n.Code != "" {
		t.Fatalf("security notice %+v", n)
	}
	g.quiet()
	if st := mfaStatus(t, s, "alice"); st["enabled"] != false || len(st["methods"].([]any)) != 0 {
		t.Fatalf("status after delete: %v", st)
	}
}

// TestSignInChallengeOverSMS: otp/send hands a code to the gateway, verify accepts it
// once and only before it expires, and wrong codes count toward the shared lockout.
func TestSignInChallengeOverSMS(t *testing.T) {
	s := newStack(t)
	g := newGateway(t, s)
	const phone = "+14155550123"
	smsChannel(t, s, g, "alice", phone, "bank-web")

	send := func() string {
		t.Helper()
		r := s.as("alice", http.MethodPost, "/api/v1/mfa/otp/send", `{"method":"sms"}`)
		if r.Status != http.StatusOK || get(r.Body, "data", "sent") != true || get(r.Body, "data", "expires_in") != float64(300) {
			t.Fatalf("otp/send: %d %s", r.Status, r.Raw)
		}
		return g.next(activity.NotifySMS).oneTimeCode(t, s, "alice", phone, "mfa_signin_code", "en")
	}
	verify := func(code string, status int, errCode string) response {
		t.Helper()
		r := s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"code":"`+code+`"}`)
		if r.Status != status || (errCode != "" && get(r.Body, "error", "code") != errCode) {
			t.Fatalf("verify %s: %d %s, want %d %s", code, r.Status, r.Raw, status, errCode)
		}
		return r
	}

	// No e-mail channel: nothing to send to.
	if r := s.as("alice", http.MethodPost, "/api/v1/mfa/otp/send", `{"method":"email"}`); r.Status != http.StatusNotFound {
		t.Fatalf("otp/send email without an e-mail channel: %d %s", r.Status, r.Raw)
	}

	code := send()
	r := verify(code, http.StatusOK, "")
	if get(r.Body, "data", "verified") != true || get(r.Body, "data", "method") != "sms" {
		t.Fatalf("verify: %s", r.Raw)
	}
	if get(mfaStatus(t, s, "alice"), "methods", 0, "last_used_at") == nil {
		t.Fatal("the SMS method's last use is not recorded")
	}
	verify(code, http.StatusBadRequest, mfa.CodeInvalidCode) // spent: failure 1

	code = send()
	s.Clock.Advance(5*time.Minute + time.Second)
	verify(code, http.StatusBadRequest, mfa.CodeInvalidCode) // expired: failure 2

	code = send()
	for i := 3; i <= 5; i++ { // the 5th failure still answers 400 and starts the lock
		verify(otherCode(code), http.StatusBadRequest, mfa.CodeInvalidCode)
	}
	r = verify(code, http.StatusTooManyRequests, mfa.CodeTooManyAttempts) // the right code is not even looked at
	if ra, _ := strconv.Atoi(r.Header.Get("Retry-After")); ra < 299 || ra > 300 {
		t.Fatalf("Retry-After = %q, want the 300 s of the lock", r.Header.Get("Retry-After"))
	}
	r = s.as("alice", http.MethodPost, "/api/v1/mfa/otp/send", `{"method":"sms"}`)
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("otp/send while locked: %d %s", r.Status, r.Raw)
	}
	g.quiet()

	s.Clock.Advance(5 * time.Minute)
	verify(send(), http.StatusOK, "")
	types := auditedTypes(t, s, "alice")
	if n := occurrences(types, mfa.EventVerifyFailed); n != 5 {
		t.Fatalf("%d verify.failed records, want 5: %v", n, types)
	}
	if n := occurrences(types, mfa.EventVerifySucceeded); n != 2 {
		t.Fatalf("%d verify.succeeded records, want 2: %v", n, types)
	}
}

// TestAdminResetRecordsEveryRemoval: an admin reset of a user with a TOTP device and an
// SMS channel records each removal as its own fact, the channel's as channel.deleted
// (SMS and e-mail methods have no removal event of their own), so that a subscriber
// rebuilding state from MFA_EVENTS learns the channel is gone.
func TestAdminResetRecordsEveryRemoval(t *testing.T) {
	s := newStack(t)
	g := newGateway(t, s)
	s.enrol("alice", "Phone")
	smsChannel(t, s, g, "alice", "+34600111222", "bank-web")
	admin := "Bearer " + s.token("helpdesk", map[string]any{"scope": "mfa:admin"})
	r := s.call(http.MethodDelete, "/api/v1/admin/users/alice/mfa", "", "Authorization", admin)
	if r.Status != http.StatusOK || get(r.Body, "data", "removed") != float64(2) {
		t.Fatalf("reset: %d %s", r.Status, r.Raw)
	}
	types := auditedTypes(t, s, "alice")
	reset := slices.Index(types, mfa.EventAdminReset)
	got := strings.Join(types[reset:], ",")
	want := strings.Join([]string{mfa.EventAdminReset, mfa.EventTOTPDeviceRemoved, mfa.EventChannelDeleted,
		mfa.EventBackupRevoked, mfa.EventSignInDisabled}, ",")
	if got != want {
		t.Fatalf("facts of the reset %s\nwant %s", got, want)
	}
	var body []byte
	if err := s.DB.QueryRow("SELECT body FROM audit_log WHERE user_id = 'alice' AND type = ?", mfa.EventChannelDeleted).Scan(&body); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"mfa:channel":"sms"`) || !strings.Contains(string(body), `"mfa:removed":1`) {
		t.Fatalf("channel.deleted %s", body)
	}
}
