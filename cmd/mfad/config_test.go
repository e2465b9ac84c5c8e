package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mfad/mfad/channels"
)

// TestEffectiveConfigurationHidesSecrets: the start-up log shows every setting but no
// secret, including credentials inside URLs.
func TestEffectiveConfigurationHidesSecrets(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.register(fs)
	args := []string{
		"--jwt-secret", "jwt-secret-value-0123456789abcdefghij",
		"--secret-key", "c2VhbGluZy1rZXktdmFsdWUtMDEyMzQ1Njc4OWFiY2Q=",
		"--introspection-secret", "introspection-secret-value",
		"--nats-url", "nats://svc:nats-password@n1:4222, nats://nats-token@n2:4222,nats://n3:4222",
		"--http-addr", "127.0.0.1:9999",
	}
	if err := parseFlags(fs, args, env(), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	logEffective(slog.New(slog.NewJSONHandler(&buf, nil)), fs, false)
	out := buf.String()
	for _, secret := range []string{"jwt-secret-value", "c2VhbGluZy1rZXkt", "introspection-secret-value", "nats-password", "nats-token"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log shows %q:\n%s", secret, out)
		}
	}
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"MFAD_JWT_SECRET":           "********",
		"MFAD_SECRET_KEY":           "********",
		"MFAD_INTROSPECTION_SECRET": "********",
		"MFAD_NATS_URL":             "nats://svc:xxxxx@n1:4222,nats://xxxxx@n2:4222,nats://n3:4222",
		"MFAD_HTTP_ADDR":            "127.0.0.1:9999",
		"MFAD_JWKS_URL":             "",
		"MFAD_MANDATORY_CHANNELS":   "",
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %v", k, line[k], v)
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := line[envName(f.Name)]; !ok {
			t.Errorf("setting %s is not logged", envName(f.Name))
		}
	})
}

// TestWebAuthnPolicy: the workers' relying party from the settings. The default origin
// is the HTTP port on localhost, so the embedded default works in a browser on the same
// machine.
func TestWebAuthnPolicy(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		origins []string
		check   func(p channels.WebAuthnPolicy) bool
	}{
		{"defaults", nil, []string{"http://localhost:8080"}, func(p channels.WebAuthnPolicy) bool {
			return p.RPID == "localhost" && p.RPName == "mfad" && !p.RequireUserVerification && !p.RefuseSynced &&
				p.Attestation == "none" && p.MaxCredentials == 10 && len(p.AAGUIDs) == 0
		}},
		{"the port follows the HTTP address", []string{"--http-addr", "127.0.0.1:9443"}, []string{"http://localhost:9443"}, nil},
		{"explicit origins, an Android app among them",
			[]string{"--webauthn-origins", "https://id.example.com, android:apk-key-hash:abc", "--webauthn-rp-id", "example.com"},
			[]string{"https://id.example.com", "android:apk-key-hash:abc"}, func(p channels.WebAuthnPolicy) bool { return p.RPID == "example.com" }},
		{"an AAL3-style policy",
			[]string{"--webauthn-user-verification", "required", "--webauthn-allow-synced=false",
				"--webauthn-aaguids", "cb69481e-8ff7-4039-93ec-0a2729a154a8", "--webauthn-attestation", "direct"},
			[]string{"http://localhost:8080"}, func(p channels.WebAuthnPolicy) bool {
				return p.RequireUserVerification && p.RefuseSynced && len(p.AAGUIDs) == 1 &&
					p.AAGUIDs[0].String() == "cb69481e-8ff7-4039-93ec-0a2729a154a8" && p.Attestation == "direct"
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var cfg Config
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			cfg.register(fs)
			if err := parseFlags(fs, tc.args, env(), &bytes.Buffer{}); err != nil {
				t.Fatal(err)
			}
			p, err := cfg.webauthn()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(p.Origins, " ") != strings.Join(tc.origins, " ") || (tc.check != nil && !tc.check(p)) {
				t.Fatalf("policy %+v", p)
			}
		})
	}
}

// TestLimitFlag: a limit not given is nil (the stream keeps its own), 0 is a value (it
// lifts the limit), and a negative one is refused.
func TestLimitFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want *time.Duration
		err  bool
	}{
		{nil, nil, false},
		{[]string{"--age", "0"}, ptrTo(time.Duration(0)), false},
		{[]string{"--age", "2h"}, ptrTo(2 * time.Hour), false},
		{[]string{"--age", "-1m"}, nil, true},
		{[]string{"--age", "soon"}, nil, true},
	} {
		var age limitFlag[time.Duration]
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.Var(&age, "age", "")
		err := fs.Parse(tc.args)
		got := age.ptr()
		if (err != nil) != tc.err || (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
			t.Errorf("%v: %v (%v), want %v (error %t)", tc.args, got, err, tc.want, tc.err)
		}
	}
	var size limitFlag[int64]
	if err := size.Set("1048576"); err != nil || *size.ptr() != 1<<20 || size.String() != "1048576" {
		t.Errorf("bytes: %v %v %q", err, size.ptr(), size.String())
	}
}

func ptrTo[T any](v T) *T { return &v }
