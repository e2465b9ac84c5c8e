package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfad/mfad/activity"
	"github.com/mfad/mfad/activity/natstest"
	"github.com/mfad/mfad/channels/gateway"
	"github.com/mfad/mfad/channels/gateway/gatewaytest"
	"github.com/mfad/mfad/channels/gateway/smtptest"
)

// devMessage waits until mfad gateway --dev has printed a message whose first line
// contains head, and returns its code and its text.
func (p *process) devMessage(head string) (code, text string) {
	p.t.Helper()
	header := regexp.MustCompile(`(?m)^--- (.*), code ([0-9]{6})\n`)
	p.waitFor("a message "+head+" on stdout", func() bool {
		out := p.stdout.String()
		for _, m := range header.FindAllStringSubmatchIndex(out, -1) {
			if strings.Contains(out[m[2]:m[3]], head) {
				code = out[m[4]:m[5]]
				text, _, _ = strings.Cut(out[m[1]:], "\n--- ")
			}
		}
		return code != ""
	})
	return code, text
}

// post sends one JSON request as token and wants status.
func post(t *testing.T, url, token, body string, status int, headers ...string) answer {
	t.Helper()
	a, err := newAPIClient("", 10*time.Second).do(http.MethodPost, url, token, body, headers...)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	if a.status != status {
		t.Fatalf("POST %s %s: %d %s, want %d", url, body, a.status, a.raw, status)
	}
	return a
}

// startServeAndGateway runs mfad serve on the embedded NATS and mfad gateway with
// gatewayEnv against it, and returns them with the API's base URL, a token for alice
// and serve's data dir.
func startServeAndGateway(t *testing.T, gatewayArgs []string, gatewayEnv ...string) (serve, gw *process, base, token, dataDir string) {
	t.Helper()
	dataDir = t.TempDir()
	serve = startMFAD(t, "mfad serve", "MFAD_DATA_DIR="+dataDir, "MFAD_HTTP_ADDR=127.0.0.1:0", "MFAD_NATS_LISTEN=127.0.0.1:0")
	nl, _ := serve.logged("embedded NATS listening")
	addr, _ := nl["addr"].(string)
	// As the README has it: the embedded server's gateway user, from mfad nats-url.
	gw = startProcess(t, "mfad gateway", mfadBinary(t),
		cleanEnv(append([]string{"MFAD_NATS_URL=" + natsURLOf(t, dataDir, addr, "gateway"), "MFAD_METRICS_ADDR=127.0.0.1:0"}, gatewayEnv...)...),
		append([]string{"gateway"}, gatewayArgs...)...)
	gw.waitLog("gateway started")
	// The gateway user has an account of its own and reaches MFA_NOTIFY through the
	// outside domain, which --nats-js-domain auto found.
	if d, ok := gw.logged("JetStream domain"); !ok || d["domain"] != activity.OutsideDomain {
		t.Fatalf("the gateway did not find the domain %s: %v", activity.OutsideDomain, d)
	}
	return serve, gw, "http://" + serve.httpAddr(), mintToken(t, nil, "--sub", "alice", "--data-dir", dataDir), dataDir
}

// TestGatewayDevFinishesTheFlows is the README's quick try: with mfad serve and
// mfad gateway --dev, the codes the gateway prints confirm an SMS channel and an
// e-mail channel over HTTP, and answer a sign-in challenge.
func TestGatewayDevFinishesTheFlows(t *testing.T) {
	serve, gw, base, token, dataDir := startServeAndGateway(t, []string{"--dev"})

	post(t, base+"/settings/MfaSignIn", token, `{"mfaMethod":"sms","phoneNumber":"+34600111222"}`, http.StatusOK)
	code, text := gw.devMessage("sms to +34600111222, mfa_channel_code (en)")
	if !strings.Contains(text, code+" is your mfad code to confirm this number") {
		t.Fatalf("SMS text %q", text)
	}
	a := post(t, base+"/settings/MfaSignIn", token,
		fmt.Sprintf(`{"mfaMethod":"sms","phoneNumber":"+34600111222","code":%q}`, code), http.StatusOK)
	if a.body["status"] != "enabled" {
		t.Fatalf("confirming the SMS channel: %s", a.raw)
	}

	post(t, base+"/settings/MfaSignIn", token, `{"mfaMethod":"email","email":"alice@example.com"}`, http.StatusOK,
		"Accept-Language", "es")
	code, text = gw.devMessage("email to alice@example.com, mfa_channel_code (es)")
	if !strings.Contains(text, "Subject: Tu código de verificación de mfad") || !strings.Contains(text, "    "+code+"\n") {
		t.Fatalf("e-mail text %q", text)
	}
	post(t, base+"/settings/MfaSignIn", token,
		fmt.Sprintf(`{"mfaMethod":"email","email":"alice@example.com","code":%q}`, code), http.StatusOK)

	post(t, base+"/api/v1/mfa/otp/send", token, `{"method":"email"}`, http.StatusOK)
	code, _ = gw.devMessage("email to alice@example.com, mfa_signin_code (en)")
	a = post(t, base+"/api/v1/mfa/verify", token, fmt.Sprintf(`{"code":%q}`, code), http.StatusOK)
	if data, _ := a.body["data"].(map[string]any); data["verified"] != true || data["method"] != "email" {
		t.Fatalf("sign-in with the e-mailed code: %s", a.raw)
	}

	ml, ok := gw.logged("metrics listening")
	if !ok {
		t.Fatal("the gateway did not log its metrics address")
	}
	// The metrics count what was printed: codes, and the notices of the factors added.
	out := gw.stdout.String()
	sms, email := strings.Count(out, "--- sms to "), strings.Count(out, "--- email to ")
	metrics := getText(t, fmt.Sprintf("http://%s/metrics", ml["addr"]))
	for _, want := range []string{fmt.Sprintf(`mfad_gateway_sent_total{channel="sms"} %d`, sms),
		fmt.Sprintf(`mfad_gateway_sent_total{channel="email"} %d`, email), `mfad_gateway_dead_lettered_total{channel="sms"} 0`,
		`mfad_gateway_dead_lettered_total{channel="email"} 0`} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("gateway metrics lack %s", want)
		}
	}
	if strings.Contains(strings.Join(gw.output(), "\n"), code) {
		t.Fatal("the gateway's log holds a code")
	}
	gw.stopCleanly()

	// A second gateway process takes over the durable consumer: it delivers what is
	// new and nothing the first one acknowledged.
	nl, _ := serve.logged("embedded NATS listening")
	next := startProcess(t, "mfad gateway 2", mfadBinary(t),
		cleanEnv("MFAD_NATS_URL="+natsURLOf(t, dataDir, nl["addr"].(string), "gateway"), "MFAD_METRICS_ADDR="), "gateway", "--dev")
	next.waitLog("gateway started")
	post(t, base+"/api/v1/mfa/otp/send", token, `{"method":"sms"}`, http.StatusOK)
	next.devMessage("sms to +34600111222, mfa_signin_code (en)")
	if out := next.stdout.String(); strings.Count("\n"+out, "\n--- ") != 1 {
		t.Fatalf("the second gateway printed more than the new message:\n%s", out)
	}
	next.stopCleanly()
	serve.stopCleanly()
}

// TestGatewayDeliversEmailOverSMTP: mfad gateway delivers an e-mail code through a real
// SMTP server, and the code confirms the channel.
func TestGatewayDeliversEmailOverSMTP(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{StartTLS: true, Auth: true})
	serve, gw, base, token, _ := startServeAndGateway(t, nil,
		"MFAD_SMTP_URL="+srv.URL("smtp", true), "MFAD_SMTP_FROM=Acme <no-reply@acme.example>",
		"MFAD_SMTP_CA_FILE="+srv.CAFile, "MFAD_APP_NAME=Acme")
	post(t, base+"/settings/MfaSignIn", token, `{"mfaMethod":"email","email":"alice@example.com"}`, http.StatusOK)
	m := srv.Wait(t, 1)[0]
	code := regexp.MustCompile(`(?m)^    ([0-9]{6})$`).FindStringSubmatch(m.Text)
	if code == nil || m.Header.Get("X-RcptTo") != "alice@example.com" || m.Header.Get("From") != `"Acme" <no-reply@acme.example>` {
		t.Fatalf("message at the SMTP server:\n%s", m.Raw)
	}
	if s, _ := m.Subject(); s != "Your Acme verification code" {
		t.Fatalf("Subject %q", s)
	}
	a := post(t, base+"/settings/MfaSignIn", token,
		fmt.Sprintf(`{"mfaMethod":"email","email":"alice@example.com","code":%q}`, code[1]), http.StatusOK)
	if a.body["status"] != "enabled" {
		t.Fatalf("confirming with the e-mailed code: %s", a.raw)
	}
	if out := strings.Join(gw.output(), "\n"); strings.Contains(out, smtptest.Password) || strings.Contains(out, code[1]) {
		t.Fatal("the gateway's log holds the SMTP password or the code")
	}
	gw.stopCleanly()
	serve.stopCleanly()
}

// TestGatewayUsage: settings that cannot work are refused before anything starts.
func TestGatewayUsage(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"nothing to deliver with", nil, nil, "nothing to deliver with"},
		{"dev and a real channel", []string{"--dev"}, []string{"MFAD_SMTP_URL", "smtp://mail.example.com"}, "does not go with"},
		{"SMTP without a sender", []string{"--smtp-url", "smtp://mail.example.com"}, nil, "--smtp-from is required"},
		{"bad SMTP URL", []string{"--smtp-url", "http://mail.example.com", "--smtp-from", "a@example.com"}, nil, "smtp or smtps"},
		{"SMS in clear", []string{"--sms-url", "http://sms.example.com/m", "--sms-from", "Acme"}, nil, "plain http only to a loopback host"},
		{"unknown SMS provider", []string{"--sms-url", "https://sms.example.com/m", "--sms-from", "Acme", "--sms-provider", "pigeon"}, nil,
			"unknown SMS provider"},
		{"no attempts", []string{"--dev", "--max-attempts", "0"}, nil, "--max-attempts"},
		{"log format", []string{"--dev"}, []string{"MFAD_LOG_FORMAT", "xml"}, "--log-format must be auto, text or json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, err := runCLI(t, env(tc.env...), append([]string{"gateway"}, tc.args...)...)
			var usage usageError
			if !errors.As(err, &usage) || !strings.Contains(err.Error(), tc.want) || stdout != "" || stderr != "" {
				t.Fatalf("err %v, stdout %q, stderr %q: want a usage error with %q", err, stdout, stderr, tc.want)
			}
		})
	}
}

// TestGatewayHelpListsEveryFlag: mfad gateway --help shows every setting with its
// variable, and what the command does.
func TestGatewayHelpListsEveryFlag(t *testing.T) {
	var cfg GatewayConfig
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	cfg.register(fs)
	for _, args := range [][]string{{"gateway", "--help"}, {"help", "gateway"}} {
		stdout, _, err := runCLI(t, env(), args...)
		if err != nil {
			t.Fatal(err)
		}
		fs.VisitAll(func(f *flag.Flag) {
			if !regexp.MustCompile(`(?m)^  -`+regexp.QuoteMeta(f.Name)+`\b`).MatchString(stdout) ||
				!strings.Contains(stdout, "["+envName(f.Name)+"]") {
				t.Errorf("%v: flag -%s or [%s] missing", args, f.Name, envName(f.Name))
			}
		})
		if !strings.Contains(stdout, "mfa.gateway.dead.<channel>") {
			t.Errorf("%v does not say what the command does:\n%s", args, stdout)
		}
	}
}

// TestGatewayConfigurationHidesSecrets: the gateway logs its settings like serve, with
// the SMTP and SMS credentials masked.
func TestGatewayConfigurationHidesSecrets(t *testing.T) {
	var cfg GatewayConfig
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	cfg.register(fs)
	args := []string{"--smtp-url", "smtp://mailer:smtp-password@mail.example.com:587", "--smtp-from", "a@example.com",
		"--sms-url", "https://AC1:sms-url-token@api.twilio.com/x", "--sms-from", "Acme", "--sms-password", "sms-password-flag"}
	if err := parseFlags(fs, args, env(), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for _, text := range []bool{false, true} {
		var buf bytes.Buffer
		log, _ := newLogger(&buf, map[bool]string{false: logFormatJSON, true: logFormatText}[text], "info")
		logEffective(log, fs, text)
		out := buf.String()
		for _, secret := range []string{"smtp-password", "sms-url-token", "sms-password-flag"} {
			if strings.Contains(out, secret) {
				t.Errorf("the log shows %q:\n%s", secret, out)
			}
		}
		if !strings.Contains(out, "smtp://mailer:xxxxx@mail.example.com:587") {
			t.Errorf("the SMTP URL is not in the log, masked:\n%s", out)
		}
	}
}

// TestGatewayJetStreamDomain: --js-domain auto finds mfad's streams both where the
// gateway shares mfad's account and where it has one of its own that sees them under
// the domain mfad.
func TestGatewayJetStreamDomain(t *testing.T) {
	own := natstest.Server(t)
	natstest.JetStream(t, natstest.Connect(t, own.ClientURL()))
	outside := gatewaytest.OutsideAccount(t, gateway.PublishPermissions(gatewaytest.Domain), gateway.SubscribePermissions)
	natstest.JetStream(t, natstest.Connect(t, outside.ClientURL(), nats.UserInfo(gatewaytest.Admin, gatewaytest.AdminPassword)))

	cases := []struct {
		name   string
		nc     *nats.Conn
		domain string // the one logged, "" for none
	}{
		{"mfad's account", natstest.Connect(t, own.ClientURL()), ""},
		{"an account of its own", natstest.Connect(t, outside.ClientURL(),
			nats.UserInfo(gatewaytest.Gateway, gatewaytest.GatewayPassword)), gatewaytest.Domain},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			log, _ := newLogger(&logs, logFormatJSON, "info")
			newGateway := func(domain string) (*gateway.Gateway, error) {
				js, err := jetstream.New(tc.nc)
				if domain != "" {
					js, err = jetstream.NewWithDomain(tc.nc, domain)
				}
				if err != nil {
					return nil, err
				}
				return gateway.New(js, gateway.Config{SMS: gateway.NewDev(io.Discard)})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			g, err := startGateway(ctx, activity.DomainAuto, newGateway, log)
			if err != nil || g == nil {
				t.Fatalf("startGateway: %v, %v\n%s", g, err, logs.String())
			}
			defer g.Stop(context.Background())
			logged := strings.Contains(logs.String(), `"msg":"JetStream domain","domain":"`+tc.domain+`"`)
			if tc.domain != "" && !logged || tc.domain == "" && strings.Contains(logs.String(), "JetStream domain") {
				t.Fatalf("want domain %q, log:\n%s", tc.domain, logs.String())
			}
		})
	}
}
