package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"log/slog"
	"strings"
	"testing"
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
