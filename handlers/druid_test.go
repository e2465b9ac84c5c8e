package handlers_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
)

// The DruID dialect (API.md §3) through HTTP: every status it documents, in its
// envelope, against the real worker.

// druidActivity is the activity of API.md §3 by actor for verb on channel; ctx adds
// context members as name, value pairs.
func druidActivity(actor, verb, channel string, ctx ...string) string {
	c := map[string]any{"mfa_channel": channel}
	for i := 0; i+1 < len(ctx); i += 2 {
		c[ctx[i]] = ctx[i+1]
	}
	raw, err := json.Marshal(map[string]any{
		"actor":   map[string]any{"id": actor, "objectType": "person"},
		"verb":    verb,
		"object":  map[string]any{"objectType": "user"},
		"source":  map[string]any{"id": "pc", "objectType": "device"},
		"context": c,
	})
	if err != nil {
		panic(err)
	}
	return string(raw)
}

// druid posts body to the endpoint of verb as sub, from entry point bank-web; headers
// add to or override that (a "From", "" pair sends no entry point).
func (s *stack) druid(sub, verb, body string, headers ...string) response {
	s.t.Helper()
	return s.as(sub, http.MethodPost, "/activityid/v1/mfa/"+verb, body, append([]string{"From", "bank-web"}, headers...)...)
}

// druidErr is an expected entry of result.errors.
type druidErr struct{ message, field string }

// checkDruid checks the DruID envelope: {"result":{status,message,elapsed,errors}} with
// result.status equal to the HTTP status, elapsed a number of seconds, and errors as
// listed (each with its details). message "" skips the headline check.
func checkDruid(t testing.TB, r response, status int, message string, errs ...druidErr) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Raw)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q", ct)
	}
	res, ok := r.Body["result"].(map[string]any)
	if !ok || len(r.Body) != 1 || len(res) != 4 {
		t.Fatalf("not the DruID envelope: %s", r.Raw)
	}
	if res["status"] != float64(status) {
		t.Fatalf("result.status %v, HTTP status %d", res["status"], status)
	}
	if msg, _ := res["message"].(string); msg == "" || (message != "" && msg != message) {
		t.Fatalf("result.message %q, want %q", res["message"], message)
	}
	// Seconds, not milliseconds: a local request takes well under one.
	if e, ok := res["elapsed"].(float64); !ok || e < 0 || e > 5 {
		t.Fatalf("result.elapsed %v (%T) is not a small number of seconds", res["elapsed"], res["elapsed"])
	}
	got, ok := res["errors"].([]any)
	if !ok || len(got) != len(errs) {
		t.Fatalf("result.errors %v, want %v", res["errors"], errs)
	}
	for i, want := range errs {
		e := got[i].(map[string]any)
		field, _ := e["field"].(string)
		if e["message"] != want.message || field != want.field {
			t.Fatalf("errors[%d] = %v, want message %s field %q (all: %s)", i, e, want.message, want.field, r.Raw)
		}
		if d, _ := e["details"].(string); d == "" {
			t.Fatalf("errors[%d] has no details: %v", i, e)
		}
	}
	return res
}

// druidTOTPCode is the code of secret at the stack's time, computed the way an
// authenticator app does.
func druidTOTPCode(t testing.TB, s *stack, secret string) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, s.Clock.Now(), totp.ValidateOpts{
		Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// druidTOTPDevice sets up and verifies a TOTP device through the device dialect from
// entry point from; it returns the backup codes the verification handed out, if any.
func druidTOTPDevice(t testing.TB, s *stack, user, name, from string) []any {
	t.Helper()
	r := s.as(user, http.MethodPost, "/api/v1/mfa/totp/setup", `{"device_name":"`+name+`"}`, "From", from)
	if r.Status != http.StatusOK {
		t.Fatalf("setup %s: %d %s", name, r.Status, r.Raw)
	}
	id := int64(get(r.Body, "data", "device_id").(float64))
	code := druidTOTPCode(t, s, get(r.Body, "data", "secret").(string))
	r = s.as(user, http.MethodPost, "/api/v1/mfa/totp/verify",
		`{"code":"`+code+`","device_id":`+strconv.FormatInt(id, 10)+`}`, "From", from)
	if r.Status != http.StatusOK || get(r.Body, "data", "device_id") != float64(id) {
		t.Fatalf("verify %s: %d %s", name, r.Status, r.Raw)
	}
	codes, _ := get(r.Body, "data", "backup_codes").([]any)
	return codes
}

func TestDruidFieldErrors(t *testing.T) {
	s := newStack(t)
	del := func(ctx ...string) string { return druidActivity("alice", activity.VerbDelete, "sms", ctx...) }
	bad := func(field string) druidErr { return druidErr{"invalid_parameter", field} }
	tests := []struct {
		name    string
		verb    string
		body    string
		headers []string
		message string
		errs    []druidErr
	}{
		{name: "malformed JSON", verb: "delete", body: `{"actor":`, errs: []druidErr{bad("body")}},
		{name: "array body", verb: "delete", body: `[]`, errs: []druidErr{bad("body")}},
		{name: "empty body", verb: "delete", headers: []string{"Content-Type", "application/json"}, errs: []druidErr{bad("body")}},
		{name: "missing From", verb: "delete", body: del(), headers: []string{"From", ""}, errs: []druidErr{bad("From")}},
		{name: "From with a space", verb: "delete", body: del(), headers: []string{"From", "bank web"}, errs: []druidErr{bad("From")}},
		{name: "text Content-Type", verb: "delete", body: del(), headers: []string{"Content-Type", "text/plain"},
			errs: []druidErr{bad("Content-Type")}},
		{name: "form Content-Type", verb: "delete", body: del(), headers: []string{"Content-Type", "application/x-www-form-urlencoded"},
			errs: []druidErr{bad("Content-Type")}},
		{name: "no Content-Type, no From, no body", verb: "update", headers: []string{"From", ""},
			errs: []druidErr{bad("Content-Type"), bad("From"), bad("body")}},
		{name: "verb of another endpoint", verb: "delete", body: druidActivity("alice", "update", "sms", "mfa_channel_address", "+34600111222"),
			errs: []druidErr{bad("verb")}},
		{name: "actor a string", verb: "delete", body: `{"actor":"alice","verb":"delete","object":{"objectType":"user"},` +
			`"source":{"id":"pc","objectType":"device"},"context":{"mfa_channel":"sms"}}`, errs: []druidErr{bad("actor")}},
		{name: "actor.id a number", verb: "delete", body: strings.Replace(del(), `"id":"alice"`, `"id":42`, 1),
			errs: []druidErr{bad("actor.id")}},
		{name: "source.id not a documented device", verb: "delete", body: strings.Replace(del(), `"id":"pc"`, `"id":"laptop"`, 1),
			errs: []druidErr{bad("source.id")}},
		{name: "objectType of the actor", verb: "delete", body: strings.Replace(del(), `"objectType":"person"`, `"objectType":"user"`, 1),
			errs: []druidErr{bad("actor.objectType")}},
		{name: "unknown channel", verb: "delete", body: druidActivity("alice", "delete", "voice"), errs: []druidErr{bad("context.mfa_channel")}},
		{name: "totp cannot be updated", verb: "update", body: druidActivity("alice", "update", "totp", "mfa_channel_address", "+34600111222"),
			errs: []druidErr{bad("context.mfa_channel")}},
		{name: "update without address", verb: "update", body: druidActivity("alice", "update", "sms"),
			errs: []druidErr{bad("context.mfa_channel_address")}},
		{name: "update with a number that is not E.164", verb: "update", body: druidActivity("alice", "update", "sms", "mfa_channel_address", "0034600111222"),
			errs: []druidErr{bad("context.mfa_channel_address")}},
		{name: "update e-mail with a bad address", verb: "update", body: druidActivity("alice", "update", "email", "mfa_channel_address", "alice@"),
			errs: []druidErr{bad("context.mfa_channel_address")}},
		{name: "validate without code", verb: "validate", body: druidActivity("alice", "validate", "sms"),
			errs: []druidErr{bad("context.mfa_code")}},
		{name: "validate with a short code", verb: "validate", body: druidActivity("alice", "validate", "sms", "mfa_code", "12345"),
			errs: []druidErr{bad("context.mfa_code")}},
		{name: "every problem at once", verb: "delete", headers: []string{"Content-Type", "text/plain", "From", ""},
			body: `{"verb":"update","actor":{"id":7},"object":{},"source":{"id":"laptop","objectType":"device"},"context":{}}`,
			errs: []druidErr{bad("Content-Type"), bad("From"), bad("verb"), bad("actor.id"), bad("actor.objectType"),
				bad("object.objectType"), bad("source.id"), bad("context.mfa_channel")}},
		// A broken request is refused as such before the actor is compared to the token.
		{name: "bad request of another actor", verb: "delete", body: druidActivity("bob", "delete", "fax"),
			errs: []druidErr{bad("context.mfa_channel")}},
		{name: "Spanish", verb: "delete", body: del(), headers: []string{"From", "", "Accept-Language", "es-ES,es;q=0.9"},
			message: "Petición incorrecta", errs: []druidErr{bad("From")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.druid("alice", tc.verb, tc.body, tc.headers...)
			message := tc.message
			if message == "" {
				message = "Bad request"
			}
			res := checkDruid(t, r, http.StatusBadRequest, message, tc.errs...)
			details := get(res, "errors", 0, "details").(string)
			if !strings.Contains(details, tc.errs[0].field) {
				t.Fatalf("details %q do not name the field %s", details, tc.errs[0].field)
			}
			if tc.message != "" && !strings.Contains(details, "el campo From es obligatorio") {
				t.Fatalf("details %q are not in Spanish", details)
			}
		})
	}
	if types := auditedTypes(t, s, "alice"); len(types) != 0 {
		t.Fatalf("refused requests changed something: %v", types)
	}
}

// TestDruidAuthAndLimits: answers from the layers in front of the dialect (auth, body
// limit, the actor check) come back in the DruID envelope too.
func TestDruidAuthAndLimits(t *testing.T) {
	s := newStack(t)
	body := druidActivity("alice", activity.VerbDelete, "sms")
	post := func(body string, headers ...string) response {
		return s.call(http.MethodPost, "/activityid/v1/mfa/delete", body, append([]string{"From", "bank-web"}, headers...)...)
	}

	t.Run("no token", func(t *testing.T) {
		r := post(body)
		checkDruid(t, r, http.StatusUnauthorized, "", druidErr{"unauthorized", ""})
		wantChallenge(t, r)
	})
	t.Run("expired token", func(t *testing.T) {
		now := s.Clock.Now()
		r := post(body, "Authorization", "Bearer "+s.token("alice", map[string]any{"exp": now.Add(-time.Hour).Unix(),
			"iat": now.Add(-2 * time.Hour).Unix()}), "Accept-Language", "es")
		checkDruid(t, r, http.StatusUnauthorized, "El token de acceso falta, no es válido o ha caducado", druidErr{"unauthorized", ""})
		wantChallenge(t, r)
	})
	t.Run("actor is not the token's subject", func(t *testing.T) {
		r := s.druid("bob", activity.VerbDelete, body)
		checkDruid(t, r, http.StatusForbidden, "You are not allowed to do this", druidErr{"forbidden", "actor.id"})
		if r.Header.Get("WWW-Authenticate") != "" {
			t.Fatalf("an actor mismatch is not a token problem: WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
		}
	})
	big := `{"padding":"` + strings.Repeat("x", 64<<10) + `",` + body[1:]
	t.Run("oversized body", func(t *testing.T) {
		r := s.druid("alice", activity.VerbDelete, big)
		checkDruid(t, r, http.StatusRequestEntityTooLarge, "", druidErr{"payload_too_large", ""})
	})
	t.Run("oversized body without Content-Length", func(t *testing.T) {
		// Chunked: the limit is found while reading, not from the header.
		req, err := http.NewRequest(http.MethodPost, s.URL+"/activityid/v1/mfa/delete", io.MultiReader(strings.NewReader(big)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("From", "bank-web")
		req.Header.Set("Authorization", "Bearer "+s.token("alice"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		r := response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			t.Fatalf("%v: %s", err, raw)
		}
		checkDruid(t, r, http.StatusRequestEntityTooLarge, "", druidErr{"payload_too_large", ""})
	})
	t.Run("exactly 64 KiB is accepted", func(t *testing.T) {
		pad := 64<<10 - len(body) - len(`{"padding":"",`) + 1
		r := s.druid("alice", activity.VerbDelete, `{"padding":"`+strings.Repeat("x", pad)+`",`+body[1:])
		checkDruid(t, r, http.StatusExpectationFailed, "MFA error", druidErr{"mfa_channel_not_found", ""})
	})
}

// TestDruidIntrospectionUnreachable: with remote token validation and the authorization
// server gone, the answer is 504 (DruID documents it) in the DruID envelope.
func TestDruidIntrospectionUnreachable(t *testing.T) {
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	s := newStack(t, func(o *stackOptions) {
		o.auth.IntrospectionURL = gone.URL
		o.auth.IntrospectionTimeout = 200 * time.Millisecond
	})
	r := s.druid("alice", activity.VerbDelete, druidActivity("alice", activity.VerbDelete, "sms"))
	checkDruid(t, r, http.StatusGatewayTimeout, "The authorization server could not be reached", druidErr{"gateway_timeout", ""})

	// A server that answers too late is as good as gone.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer slow.Close()
	s = newStack(t, func(o *stackOptions) {
		o.auth.IntrospectionURL = slow.URL
		o.auth.IntrospectionTimeout = 200 * time.Millisecond
	})
	start := time.Now()
	r = s.druid("alice", activity.VerbDelete, druidActivity("alice", activity.VerbDelete, "sms"), "Accept-Language", "es")
	checkDruid(t, r, http.StatusGatewayTimeout, "No se ha podido contactar con el servidor de autorización", druidErr{"gateway_timeout", ""})
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("the 504 took %v; the introspection timeout is 200ms", d)
	}
}

// TestDruidChannelNotFound: nothing verified of the channel means 417
// mfa_channel_not_found, and a pending setup or registration is not a channel.
func TestDruidChannelNotFound(t *testing.T) {
	s := newStack(t)
	g := newGateway(t, s)
	notFound := druidErr{"mfa_channel_not_found", ""}
	for _, ch := range []string{"sms", "email", "totp"} {
		r := s.druid("alice", activity.VerbDelete, druidActivity("alice", activity.VerbDelete, ch))
		checkDruid(t, r, http.StatusExpectationFailed, "MFA error", notFound)
	}
	r := s.druid("alice", activity.VerbValidate, druidActivity("alice", activity.VerbValidate, "sms", "mfa_code", "123456"),
		"Accept-Language", "es")
	res := checkDruid(t, r, http.StatusExpectationFailed, "Error de MFA", notFound)
	if d := get(res, "errors", 0, "details"); d != "El canal MFA no está configurado" {
		t.Fatalf("details %q", d)
	}

	// Pending: a TOTP setup not verified, an SMS registration not validated.
	if r := s.as("alice", http.MethodPost, "/api/v1/mfa/totp/setup", `{"device_name":"Phone"}`); r.Status != http.StatusOK {
		t.Fatalf("setup: %d %s", r.Status, r.Raw)
	}
	r = s.druid("alice", activity.VerbUpdate, druidActivity("alice", activity.VerbUpdate, "sms", "mfa_channel_address", "+34600111222"))
	checkDruid(t, r, http.StatusOK, "")
	g.next(activity.NotifySMS)
	for _, ch := range []string{"sms", "totp"} {
		r := s.druid("alice", activity.VerbDelete, druidActivity("alice", activity.VerbDelete, ch))
		checkDruid(t, r, http.StatusExpectationFailed, "MFA error", notFound)
	}
	if n := occurrences(auditedTypes(t, s, "alice"), mfa.EventChannelDeleted); n != 0 {
		t.Fatalf("%d channel.deleted records after refusals", n)
	}
}

// TestDruidDeleteTOTP is API.md §0's cascade example: DruID delete totp removes every
// verified device, revokes the backup codes and, as it was the last method, turns
// sign-in off, with one event per fact.
func TestDruidDeleteTOTP(t *testing.T) {
	s := newStack(t)
	codes := druidTOTPDevice(t, s, "alice", "Phone", "bank-web")
	if len(codes) != 10 {
		t.Fatalf("first device: %d backup codes, want 10", len(codes))
	}
	if codes := druidTOTPDevice(t, s, "alice", "Tablet", "bank-web"); len(codes) != 0 {
		t.Fatalf("second device handed out backup codes again: %v", codes)
	}
	if r := s.as("alice", http.MethodGet, "/api/v1/mfa/totp/devices", ""); get(r.Body, "data", "total_count") != float64(2) {
		t.Fatalf("devices: %s", r.Raw)
	}
	before := len(auditedTypes(t, s, "alice"))

	r := s.druid("alice", activity.VerbDelete, druidActivity("alice", activity.VerbDelete, "totp"), "Accept-Language", "es")
	checkDruid(t, r, http.StatusOK, "Canal MFA eliminado")

	if r := s.as("alice", http.MethodGet, "/api/v1/mfa/totp/devices", ""); get(r.Body, "data", "total_count") != float64(0) {
		t.Fatalf("devices after delete: %s", r.Raw)
	}
	if r := s.as("alice", http.MethodGet, "/api/v1/mfa/backup-codes", ""); get(r.Body, "data", "remaining") != float64(0) ||
		get(r.Body, "data", "total") != float64(0) {
		t.Fatalf("backup codes after delete: %s", r.Raw)
	}
	if st := mfaStatus(t, s, "alice"); st["enabled"] != false || len(st["methods"].([]any)) != 0 {
		t.Fatalf("status after delete: %v", st)
	}
	// A backup code no longer signs in.
	r = s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"backup_code":"`+codes[0].(string)+`"}`)
	if r.Status != http.StatusBadRequest || get(r.Body, "error", "code") != mfa.CodeMFANotEnabled {
		t.Fatalf("backup code after delete: %d %s", r.Status, r.Raw)
	}
	got := auditedTypes(t, s, "alice")[before:]
	want := []string{mfa.EventTOTPDeviceRemoved, mfa.EventTOTPDeviceRemoved, mfa.EventChannelDeleted,
		mfa.EventBackupRevoked, mfa.EventSignInDisabled}
	if !slices.Equal(got, want) {
		t.Fatalf("events of the delete %v, want %v", got, want)
	}

	// Nothing left: a second delete finds no channel.
	r = s.druid("alice", activity.VerbDelete, druidActivity("alice", activity.VerbDelete, "totp"))
	checkDruid(t, r, http.StatusExpectationFailed, "MFA error", druidErr{"mfa_channel_not_found", ""})
}

// TestDruidDeleteKeepsOtherChannels: removing TOTP while an SMS channel remains keeps
// sign-in on, and the remaining number hears of the removal.
func TestDruidDeleteKeepsOtherChannels(t *testing.T) {
	s := newStack(t)
	g := newGateway(t, s)
	druidTOTPDevice(t, s, "alice", "Phone", "bank-web")
	smsChannel(t, s, g, "alice", "+34600111222", "bank-web")

	r := s.druid("alice", activity.VerbDelete, druidActivity("alice", activity.VerbDelete, "totp"))
	checkDruid(t, r, http.StatusOK, "MFA channel deleted")
	n := g.next(activity.NotifySMS)
	if n.To != "+34600111222" || n.Template != "mfa_method_removed" {
		t.Fatalf("notice %+v", n)
	}
	g.quiet()
	st := mfaStatus(t, s, "alice")
	if st["enabled"] != true || len(st["methods"].([]any)) != 1 || get(st, "methods", 0, "type") != "sms" ||
		st["backup_codes_remaining"] != float64(0) {
		t.Fatalf("status: %v", st)
	}
	if n := occurrences(auditedTypes(t, s, "alice"), mfa.EventSignInDisabled); n != 0 {
		t.Fatalf("sign-in was turned off with an SMS channel left")
	}
}

// TestDruidMandatoryChannel: a channel created under an entry point that makes it
// mandatory is never removed by the user (417 mfa_channel_not_voluntary), even when
// other devices of the kind are voluntary, and nothing changes.
func TestDruidMandatoryChannel(t *testing.T) {
	s := newStack(t, func(o *stackOptions) {
		o.worker.Mandatory = map[string]map[mfa.Kind]bool{"bank-app": {mfa.KindTOTP: true, mfa.KindSMS: true}}
	})
	g := newGateway(t, s)
	druidTOTPDevice(t, s, "alice", "Voluntary", "bank-web")
	druidTOTPDevice(t, s, "alice", "Mandatory", "bank-app")
	smsChannel(t, s, g, "alice", "+34600111222", "bank-app")
	// E-mail is mandatory nowhere, so the same entry point leaves it voluntary.
	r := s.as("alice", http.MethodPost, "/settings/MfaSignIn", `{"mfaMethod":"email","email":"alice@example.com"}`, "From", "bank-app")
	if r.Status != http.StatusOK {
		t.Fatalf("register e-mail: %d %s", r.Status, r.Raw)
	}
	code := g.next(activity.NotifyEmail).Code
	r = s.as("alice", http.MethodPost, "/settings/MfaSignIn", `{"mfaMethod":"email","email":"alice@example.com","code":"`+code+`"}`, "From", "bank-app")
	if r.Status != http.StatusOK {
		t.Fatalf("confirm e-mail: %d %s", r.Status, r.Raw)
	}
	// Every address of the user hears of the factor added, kind by kind.
	g.added(activity.NotifyEmail, "alice@example.com")
	g.added(activity.NotifySMS, "+34600111222")

	st := mfaStatus(t, s, "alice")
	voluntary := map[string]bool{}
	for _, m := range st["methods"].([]any) {
		m := m.(map[string]any)
		voluntary[m["name"].(string)] = m["voluntary"].(bool)
	}
	want := map[string]bool{"Voluntary": true, "Mandatory": false, "+34******222": false, "a****@example.com": true}
	if len(voluntary) != len(want) {
		t.Fatalf("methods %v, want %v", voluntary, want)
	}
	for k, v := range want {
		if voluntary[k] != v {
			t.Fatalf("voluntary flags %v, want %v", voluntary, want)
		}
	}

	before := auditedTypes(t, s, "alice")
	// The entry point of the delete does not matter: the one the channel was created under does.
	for _, from := range []string{"bank-web", "bank-app"} {
		for _, ch := range []string{"totp", "sms"} {
			r := s.druid("alice", activity.VerbDelete, druidActivity("alice", activity.VerbDelete, ch), "From", from)
			res := checkDruid(t, r, http.StatusExpectationFailed, "MFA error", druidErr{"mfa_channel_not_voluntary", ""})
			if d := get(res, "errors", 0, "details"); d != "The MFA channel is mandatory for this entry point and cannot be removed" {
				t.Fatalf("details %q", d)
			}
		}
	}
	g.quiet() // no security notice: nothing was removed
	if after := mfaStatus(t, s, "alice"); len(after["methods"].([]any)) != 4 || after["enabled"] != true ||
		after["backup_codes_remaining"] != float64(10) {
		t.Fatalf("status after refused deletes: %v", after)
	}
	if after := auditedTypes(t, s, "alice"); !slices.Equal(after, before) {
		t.Fatalf("refused deletes were recorded as changes: %v", after[len(before):])
	}

	// The voluntary e-mail channel goes.
	r = s.druid("alice", activity.VerbDelete, druidActivity("alice", activity.VerbDelete, "email"))
	checkDruid(t, r, http.StatusOK, "MFA channel deleted")
}

// TestDruidValidateCodes: a wrong code is 417 mfa_code_invalid and counts toward the
// lockout; while locked, validate answers 429 with Retry-After without looking at the
// code, and after the lock the right code still works.
func TestDruidValidateCodes(t *testing.T) {
	s := newStack(t)
	g := newGateway(t, s)
	r := s.druid("alice", activity.VerbUpdate, druidActivity("alice", activity.VerbUpdate, "email", "mfa_channel_address", "alice@example.com"))
	checkDruid(t, r, http.StatusOK, "MFA channel registered, verification code sent")
	code := g.next(activity.NotifyEmail).oneTimeCode(t, s, "alice", "alice@example.com", "mfa_channel_code", "en")

	validate := func(code string, headers ...string) response {
		return s.druid("alice", activity.VerbValidate, druidActivity("alice", activity.VerbValidate, "email", "mfa_code", code), headers...)
	}
	wrong := otherCode(code)
	for i := 1; i <= 5; i++ { // the 5th failure still answers with the code error and starts the lock
		checkDruid(t, validate(wrong), http.StatusExpectationFailed, "MFA error", druidErr{"mfa_code_invalid", ""})
	}
	r = validate(code, "Accept-Language", "es")
	checkDruid(t, r, http.StatusTooManyRequests, "Demasiados intentos, inténtelo más tarde",
		druidErr{"too_many_attempts", ""})
	if ra := r.Header.Get("Retry-After"); ra != "300" {
		t.Fatalf("Retry-After %q, want 300", ra)
	}
	// A new code cannot be asked for while locked either.
	r = s.druid("alice", activity.VerbUpdate, druidActivity("alice", activity.VerbUpdate, "email", "mfa_channel_address", "alice@example.com"))
	checkDruid(t, r, http.StatusTooManyRequests, "", druidErr{"too_many_attempts", ""})
	g.quiet()

	// The lock was not extended by the refused attempts; the code's five minutes are not
	// over either, so the lock ending at the same instant as the code leaves it dead.
	s.Clock.Advance(4*time.Minute + 59*time.Second)
	checkDruid(t, validate(code), http.StatusTooManyRequests, "", druidErr{"too_many_attempts", ""})
	s.Clock.Advance(time.Second)
	checkDruid(t, validate(code), http.StatusExpectationFailed, "", druidErr{"mfa_channel_not_found", ""})

	r = s.druid("alice", activity.VerbUpdate, druidActivity("alice", activity.VerbUpdate, "email", "mfa_channel_address", "alice@example.com"))
	checkDruid(t, r, http.StatusOK, "")
	code = g.next(activity.NotifyEmail).oneTimeCode(t, s, "alice", "alice@example.com", "mfa_channel_code", "en")
	checkDruid(t, validate(code), http.StatusOK, "MFA channel validated")
	types := auditedTypes(t, s, "alice")
	if occurrences(types, mfa.EventVerifyFailed) != 5 || occurrences(types, mfa.EventVerifyLocked) != 3 {
		t.Fatalf("audit log %v: want 5 verify.failed and 3 verify.locked", types)
	}
}

// TestDruidIdempotencyKey: a DruID request repeated with its Idempotency-Key gets the
// first answer and changes nothing: one registration, one code. A second registration
// while a verified channel of another address exists is refused.
func TestDruidIdempotencyKey(t *testing.T) {
	s := newStack(t)
	g := newGateway(t, s)
	body := druidActivity("alice", activity.VerbUpdate, "sms", "mfa_channel_address", "+34600111222")
	first := s.druid("alice", activity.VerbUpdate, body, "Idempotency-Key", "retry-1")
	checkDruid(t, first, http.StatusOK, "MFA channel registered, verification code sent")
	code := g.next(activity.NotifySMS).oneTimeCode(t, s, "alice", "+34600111222", "mfa_channel_code", "en")
	again := s.druid("alice", activity.VerbUpdate, body, "Idempotency-Key", "retry-1")
	checkDruid(t, again, http.StatusOK, "MFA channel registered, verification code sent")
	if again.Header.Get("Idempotent-Replayed") != "true" || first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("Idempotent-Replayed %q then %q", first.Header.Get("Idempotent-Replayed"), again.Header.Get("Idempotent-Replayed"))
	}
	g.quiet()
	// The replay sent no new code: the first one still confirms the channel.
	r := s.druid("alice", activity.VerbValidate, druidActivity("alice", activity.VerbValidate, "sms", "mfa_code", code))
	checkDruid(t, r, http.StatusOK, "MFA channel validated")
	g.added(activity.NotifySMS, "+34600111222")
	if n := occurrences(auditedTypes(t, s, "alice"), mfa.EventChannelRegistered); n != 1 {
		t.Fatalf("%d registrations, want 1", n)
	}

	r = s.druid("alice", activity.VerbUpdate, druidActivity("alice", activity.VerbUpdate, "sms", "mfa_channel_address", "+34600333444"))
	checkDruid(t, r, http.StatusExpectationFailed, "MFA error", druidErr{"mfa_channel_already_exists", ""})
	g.quiet()
}
