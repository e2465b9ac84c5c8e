package channels_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
	. "github.com/mfad/mfad/channels"
	"github.com/mfad/mfad/channels/sqlite/sqlitetest"
)

// The SMS and e-mail channel rules (phone.go), run by a real worker on a temporary
// SQLite store. The worker is not on NATS, so what it hands to the gateway stays in the
// notification outbox, where the tests read it exactly as the relay would publish it.

// phoneRig is a worker with a clock the test moves.
type phoneRig struct {
	t    *testing.T
	w    *Worker
	db   *sql.DB
	dir  string
	mu   sync.Mutex
	now  time.Time
	seen int // notifications already returned by sent
}

func newPhoneRig(t *testing.T, cfg Config) *phoneRig {
	t.Helper()
	r := &phoneRig{t: t, dir: t.TempDir(), now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	cfg.Now = r.clock
	w, store := sqlitetest.Worker(t, filepath.Join(r.dir, "mfad.db"), cfg, key(3))
	r.w, r.db = w, sqlitetest.DB(t, store)
	return r
}

func (r *phoneRig) clock() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now
}

func (r *phoneRig) advance(d time.Duration) {
	r.mu.Lock()
	r.now = r.now.Add(d)
	r.mu.Unlock()
}

// do runs one command for user from entry point from.
func (r *phoneRig) do(typ, user, from string, params any) mfa.Reply {
	r.t.Helper()
	cmd, err := activity.NewCommand(typ, activity.Origin{UserID: user, Actor: user, EntryPoint: from}, params)
	if err != nil {
		r.t.Fatal(err)
	}
	reply, err := r.w.Do(context.Background(), cmd)
	if err != nil {
		r.t.Fatal(err)
	}
	return reply
}

// ok runs a command that must succeed.
func (r *phoneRig) ok(typ, user string, params any) mfa.Reply {
	r.t.Helper()
	reply := r.do(typ, user, "bank-web", params)
	if !reply.OK {
		r.t.Fatalf("%s for %s: %+v", typ, user, reply)
	}
	return reply
}

// refused runs a command that must fail with code.
func (r *phoneRig) refused(typ, user string, params any, code string) mfa.Reply {
	r.t.Helper()
	reply := r.do(typ, user, "bank-web", params)
	if reply.OK || reply.Code != code {
		r.t.Fatalf("%s for %s: %+v, want %s", typ, user, reply, code)
	}
	return reply
}

// sent returns the notifications queued since the last call.
func (r *phoneRig) sent() []Outboxed {
	r.t.Helper()
	queued, err := r.w.Outbox(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	out := queued[r.seen:]
	r.seen = len(queued)
	return out
}

// code is the one code just sent to to with template.
func (r *phoneRig) code(to, template string) string {
	r.t.Helper()
	ns := r.sent()
	if len(ns) != 1 {
		r.t.Fatalf("%d notifications, want one code to %s: %+v", len(ns), to, ns)
	}
	n := ns[0]
	subject := activity.NotifySMS
	if strings.Contains(to, "@") {
		subject = activity.NotifyEmail
	}
	want := r.clock().Add(CodeTTL).UTC().Format(time.RFC3339)
	if n.Subject != subject || n.To != to || n.Template != template || n.ExpiresAt != want || n.Lang != mfa.LangEnglish {
		r.t.Fatalf("notification %+v, want %s to %s on %s expiring %s", n, template, to, subject, want)
	}
	if len(n.Code) != 6 || strings.Trim(n.Code, "0123456789") != "" {
		r.t.Fatalf("code %q is not six digits", n.Code)
	}
	return n.Code
}

// count runs a COUNT query.
func (r *phoneRig) count(query string, args ...any) int {
	r.t.Helper()
	var n int
	if err := r.db.QueryRow(query, args...).Scan(&n); err != nil {
		r.t.Fatal(err)
	}
	return n
}

// channel sets up a verified channel of kind at to for user.
func (r *phoneRig) channel(user string, kind mfa.Kind, to string) {
	r.t.Helper()
	r.ok(mfa.CmdChannelRegister, user, mfa.ChannelParams{Channel: kind, Address: to})
	code := r.code(to, TemplateChannelCode)
	r.validate(user, kind, to, code)
}

// validate confirms the new channel of kind at to with code; the user's addresses, the
// new one among them, hear of the factor added.
func (r *phoneRig) validate(user string, kind mfa.Kind, to, code string) {
	r.t.Helper()
	r.ok(mfa.CmdChannelValidate, user, mfa.ChannelParams{Channel: kind, Code: code})
	var heard bool
	for _, n := range r.sent() {
		if n.Template != NoticeMethodAdded || n.Code != "" || n.Changed != mfa.CmdChannelValidate {
			r.t.Fatalf("after validating %s: %+v, want only factor-added notices", to, n.Notification)
		}
		heard = heard || n.To == to
	}
	if !heard {
		r.t.Fatalf("the new channel %s did not hear of its own addition", to)
	}
}

// wrong is a well-formed code that is not code.
func wrong(code string) string {
	n, _ := strconv.Atoi(code)
	return strconv.Itoa(100000 + (n+1)%900000)
}

const (
	testPhone = "+34600111222"
	testEmail = "alice@example.com"
)

func TestChannelRegisterChecks(t *testing.T) {
	r := newPhoneRig(t, Config{})
	tests := []struct {
		name   string
		params mfa.ChannelParams
		field  string
		reason string
	}{
		{"sms to a local number", mfa.ChannelParams{Channel: mfa.KindSMS, Address: "600111222"}, "address", mfa.ReasonFormat},
		{"sms to an e-mail", mfa.ChannelParams{Channel: mfa.KindSMS, Address: testEmail}, "address", mfa.ReasonFormat},
		{"sms to nothing", mfa.ChannelParams{Channel: mfa.KindSMS}, "address", mfa.ReasonFormat},
		{"e-mail to a phone", mfa.ChannelParams{Channel: mfa.KindEmail, Address: testPhone}, "address", mfa.ReasonFormat},
		{"e-mail without domain", mfa.ChannelParams{Channel: mfa.KindEmail, Address: "alice@"}, "address", mfa.ReasonFormat},
		{"totp has no address", mfa.ChannelParams{Channel: mfa.KindTOTP, Address: testPhone}, "channel", mfa.ReasonEnum},
		{"no channel", mfa.ChannelParams{Address: testPhone}, "channel", mfa.ReasonEnum},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reply := r.refused(mfa.CmdChannelRegister, "alice", tc.params, mfa.CodeValidation)
			if reply.Field != tc.field || reply.Reason != tc.reason {
				t.Fatalf("reply %+v, want %s (%s)", reply, tc.field, tc.reason)
			}
		})
	}
	if n := len(r.sent()); n != 0 {
		t.Fatalf("%d notifications for refused registrations", n)
	}
	if n := r.count("SELECT count(*) FROM methods"); n != 0 {
		t.Fatalf("%d methods rows for refused registrations", n)
	}
}

// TestChannelCodeLifecycle: a registration code is stored as a keyed hash, a wrong one
// counts as a failure, the right one within five minutes makes the channel a method and
// turns sign-in on, and it works once.
func TestChannelCodeLifecycle(t *testing.T) {
	r := newPhoneRig(t, Config{})
	r.ok(mfa.CmdChannelRegister, "alice", mfa.ChannelParams{Channel: mfa.KindSMS, Address: testPhone})
	code := r.code(testPhone, TemplateChannelCode)

	if n := r.count("SELECT count(*) FROM methods WHERE user_id = 'alice' AND verified = 0 AND destination_hint = '+34******222'"); n != 1 {
		t.Fatalf("%d pending SMS rows with the masked number", n)
	}
	var sum []byte
	if err := r.db.QueryRow("SELECT code_hash FROM pending_codes WHERE purpose = 'register'").Scan(&sum); err != nil {
		t.Fatal(err)
	}
	if len(sum) != 32 || bytes.Contains(sum, []byte(code)) {
		t.Fatalf("the stored code is not a keyed hash: %x", sum)
	}

	r.refused(mfa.CmdChannelValidate, "alice", mfa.ChannelParams{Channel: mfa.KindSMS, Code: wrong(code)}, mfa.CodeInvalidCode)
	if n := r.count("SELECT count(*) FROM pending_codes"); n != 1 {
		t.Fatalf("%d codes outstanding after a wrong one, want the right one still", n)
	}
	if n := r.count("SELECT failed_attempts FROM users WHERE id = 'alice'"); n != 1 {
		t.Fatalf("%d failures counted, want 1", n)
	}
	// The wrong code did not spend the right one; e-mail has no code outstanding.
	r.refused(mfa.CmdChannelValidate, "alice", mfa.ChannelParams{Channel: mfa.KindEmail, Code: code}, mfa.CodeNoPendingSetup)

	r.advance(CodeTTL - time.Second)
	reply := r.ok(mfa.CmdChannelValidate, "alice", mfa.ChannelParams{Channel: mfa.KindSMS, Code: code})
	var res mfa.Removal
	if err := json.Unmarshal(reply.Data, &res); err != nil || !res.SignInEnabled {
		t.Fatalf("validate data %s", reply.Data)
	}
	if n := r.count("SELECT count(*) FROM methods WHERE kind = 'sms' AND verified = 1 AND expires_at IS NULL AND entry_point = 'bank-web'"); n != 1 {
		t.Fatalf("%d verified SMS methods", n)
	}
	// Sign-in is on; the failure stays counted: confirming a factor being enrolled
	// proves nothing about the factors the user already had (lockout.go).
	if n := r.count("SELECT failed_attempts + 2 * mfa_signin_enabled FROM users WHERE id = 'alice'"); n != 3 {
		t.Fatal("confirming the channel did not turn sign-in on, or it reset the failure count")
	}
	if n := r.count("SELECT count(*) FROM pending_codes"); n != 0 {
		t.Fatalf("%d codes left after use", n)
	}
	r.refused(mfa.CmdChannelValidate, "alice", mfa.ChannelParams{Channel: mfa.KindSMS, Code: code}, mfa.CodeNoPendingSetup)
}

// TestChannelCodeExpires: five minutes is the end; an expired code is no code.
func TestChannelCodeExpires(t *testing.T) {
	r := newPhoneRig(t, Config{})
	r.ok(mfa.CmdChannelRegister, "alice", mfa.ChannelParams{Channel: mfa.KindEmail, Address: testEmail})
	code := r.code(testEmail, TemplateChannelCode)
	r.advance(CodeTTL)
	r.refused(mfa.CmdChannelValidate, "alice", mfa.ChannelParams{Channel: mfa.KindEmail, Code: code}, mfa.CodeNoPendingSetup)
	if n := r.count("SELECT count(*) FROM methods WHERE verified = 1"); n != 0 {
		t.Fatal("an expired code verified the channel")
	}
	// A new registration sends a new code, which works.
	r.ok(mfa.CmdChannelRegister, "alice", mfa.ChannelParams{Channel: mfa.KindEmail, Address: testEmail})
	r.ok(mfa.CmdChannelValidate, "alice", mfa.ChannelParams{Channel: mfa.KindEmail, Code: r.code(testEmail, TemplateChannelCode)})
}

// TestChannelReRegister: registering again replaces the pending registration and its
// code; with a verified channel, another address is refused and the same one gets a
// code to confirm it again.
func TestChannelReRegister(t *testing.T) {
	r := newPhoneRig(t, Config{})
	params := mfa.ChannelParams{Channel: mfa.KindSMS, Address: testPhone}
	r.ok(mfa.CmdChannelRegister, "alice", params)
	first := r.code(testPhone, TemplateChannelCode)
	r.ok(mfa.CmdChannelRegister, "alice", mfa.ChannelParams{Channel: mfa.KindSMS, Address: "+34600333444"})
	second := r.code("+34600333444", TemplateChannelCode)
	if n := r.count("SELECT count(*) FROM methods WHERE user_id = 'alice'"); n != 1 {
		t.Fatalf("%d rows after a second registration, want the one that replaced the first", n)
	}
	if first != second {
		r.refused(mfa.CmdChannelValidate, "alice", mfa.ChannelParams{Channel: mfa.KindSMS, Code: first}, mfa.CodeInvalidCode)
	}
	r.validate("alice", mfa.KindSMS, "+34600333444", second)

	r.refused(mfa.CmdChannelRegister, "alice", params, mfa.CodeChannelExists)
	if n := len(r.sent()); n != 0 {
		t.Fatalf("a refused registration sent %d notifications", n)
	}
	r.ok(mfa.CmdChannelRegister, "alice", mfa.ChannelParams{Channel: mfa.KindSMS, Address: "+34600333444"})
	again := r.code("+34600333444", TemplateChannelCode)
	r.ok(mfa.CmdChannelValidate, "alice", mfa.ChannelParams{Channel: mfa.KindSMS, Code: again})
	if n := r.count("SELECT count(*) FROM methods WHERE user_id = 'alice' AND verified = 1"); n != 1 {
		t.Fatalf("%d verified methods after confirming again, want 1", n)
	}
}

// TestChannelCodePurposes: a sign-in code does not confirm a registration, and a
// registration code does not sign in.
func TestChannelCodePurposes(t *testing.T) {
	r := newPhoneRig(t, Config{})
	r.channel("alice", mfa.KindSMS, testPhone)

	r.ok(mfa.CmdOTPSend, "alice", mfa.OTPSendParams{Method: mfa.KindSMS})
	signIn := r.code(testPhone, TemplateSignInCode)
	r.refused(mfa.CmdChannelValidate, "alice", mfa.ChannelParams{Channel: mfa.KindSMS, Code: signIn}, mfa.CodeNoPendingSetup)
	reply := r.ok(mfa.CmdVerify, "alice", mfa.VerifyParams{Code: signIn})
	var v mfa.Verified
	if err := json.Unmarshal(reply.Data, &v); err != nil || v.Method != mfa.VerifiedBySMS {
		t.Fatalf("verify data %s", reply.Data)
	}

	r.ok(mfa.CmdChannelRegister, "alice", mfa.ChannelParams{Channel: mfa.KindSMS, Address: testPhone})
	register := r.code(testPhone, TemplateChannelCode)
	r.refused(mfa.CmdVerify, "alice", mfa.VerifyParams{Code: register}, mfa.CodeInvalidCode)
}

func TestOTPSendChecks(t *testing.T) {
	r := newPhoneRig(t, Config{})
	r.refused(mfa.CmdOTPSend, "alice", mfa.OTPSendParams{Method: mfa.KindTOTP}, mfa.CodeValidation)
	r.refused(mfa.CmdOTPSend, "alice", mfa.OTPSendParams{Method: mfa.KindSMS}, mfa.CodeChannelNotFound)
	// A registration waiting for its code is not a channel to sign in with.
	r.ok(mfa.CmdChannelRegister, "alice", mfa.ChannelParams{Channel: mfa.KindSMS, Address: testPhone})
	r.sent()
	r.refused(mfa.CmdOTPSend, "alice", mfa.OTPSendParams{Method: mfa.KindSMS}, mfa.CodeChannelNotFound)
	if n := len(r.sent()); n != 0 {
		t.Fatalf("%d codes sent to a pending registration", n)
	}
}

// TestChannelDelete: delete tells every channel the user has, the removed one included,
// before removing it; sign-in stays on while a method is left; a mandatory channel is
// not removed and nobody is told anything.
func TestChannelDelete(t *testing.T) {
	r := newPhoneRig(t, Config{Mandatory: map[string]map[mfa.Kind]bool{"bank-app": {mfa.KindSMS: true}}})
	r.channel("alice", mfa.KindSMS, testPhone)
	r.channel("alice", mfa.KindEmail, testEmail)

	reply := r.ok(mfa.CmdChannelDelete, "alice", mfa.ChannelParams{Channel: mfa.KindSMS})
	var res mfa.Removal
	if err := json.Unmarshal(reply.Data, &res); err != nil || res.Removed != 1 || !res.SignInEnabled {
		t.Fatalf("delete sms: %s", reply.Data)
	}
	ns := r.sent()
	if len(ns) != 2 || ns[0].To != testEmail || ns[1].To != testPhone {
		t.Fatalf("notices %+v, want one to the e-mail and one to the removed number", ns)
	}
	for _, n := range ns {
		if n.Template != NoticeMethodRemoved || n.Code != "" || n.Changed != mfa.CmdChannelDelete || n.UserID != "alice" {
			t.Fatalf("notice %+v", n)
		}
	}

	reply = r.ok(mfa.CmdChannelDelete, "alice", mfa.ChannelParams{Channel: mfa.KindEmail})
	if err := json.Unmarshal(reply.Data, &res); err != nil || res.Removed != 1 || res.SignInEnabled {
		t.Fatalf("delete email: %s", reply.Data)
	}
	if ns := r.sent(); len(ns) != 1 || ns[0].To != testEmail || ns[0].Template != NoticeMethodRemoved {
		t.Fatalf("notices %+v", ns)
	}
	r.refused(mfa.CmdChannelDelete, "alice", mfa.ChannelParams{Channel: mfa.KindEmail}, mfa.CodeChannelNotFound)

	// bob's number was registered from an entry point that makes SMS mandatory; the
	// entry point of the registration counts, not the validation's.
	if reply := r.do(mfa.CmdChannelRegister, "bob", "bank-app", mfa.ChannelParams{Channel: mfa.KindSMS, Address: "+34600999888"}); !reply.OK {
		t.Fatalf("register: %+v", reply)
	}
	code := r.code("+34600999888", TemplateChannelCode)
	r.validate("bob", mfa.KindSMS, "+34600999888", code)
	for _, from := range []string{"bank-web", "bank-app"} {
		if reply := r.do(mfa.CmdChannelDelete, "bob", from, mfa.ChannelParams{Channel: mfa.KindSMS}); reply.Code != mfa.CodeChannelNotVoluntary {
			t.Fatalf("delete of a mandatory channel from %s: %+v", from, reply)
		}
	}
	if n := r.count("SELECT count(*) FROM methods WHERE user_id = 'bob' AND verified = 1 AND entry_point = 'bank-app'"); n != 1 {
		t.Fatal("the mandatory channel is gone")
	}
	if ns := r.sent(); len(ns) != 0 {
		t.Fatalf("a refused delete sent notices: %+v", ns)
	}
}

// TestEmailDomainIgnoresCase: an e-mail channel is kept with its domain in lower case,
// so the same address typed with another case re-confirms the channel instead of
// being refused as another one, and the code goes to the canonical form.
func TestEmailDomainIgnoresCase(t *testing.T) {
	r := newPhoneRig(t, Config{})
	r.channel("alice", mfa.KindEmail, "Alice@example.com")
	r.ok(mfa.CmdChannelRegister, "alice", mfa.ChannelParams{Channel: mfa.KindEmail, Address: "Alice@EXAMPLE.Com"})
	r.code("Alice@example.com", TemplateChannelCode)
	r.refused(mfa.CmdChannelRegister, "alice", mfa.ChannelParams{Channel: mfa.KindEmail, Address: "bob@example.com"},
		mfa.CodeChannelExists)
}

// TestChannelStoredBeforeCanonicalAddresses: an e-mail channel kept with capitals in
// its domain, as addresses were before they were made canonical, re-confirms with the
// address in either case instead of being refused as another channel.
func TestChannelStoredBeforeCanonicalAddresses(t *testing.T) {
	r := newPhoneRig(t, Config{})
	r.channel("alice", mfa.KindEmail, "alice@example.com")
	sealer, err := NewSealer(key(3))
	if err != nil {
		t.Fatal(err)
	}
	legacy := sealer.Seal([]byte("alice@Example.com"), SecretAAD("alice"))
	if _, err := r.db.Exec(`UPDATE methods SET destination_enc = ? WHERE user_id = 'alice' AND kind = 'email'`, legacy); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"alice@Example.com", "alice@example.com"} {
		r.ok(mfa.CmdChannelRegister, "alice", mfa.ChannelParams{Channel: mfa.KindEmail, Address: addr})
	}
}
