package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// env is a getenv over a map.
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// runCLI runs the program in-process and returns what it wrote.
func runCLI(t *testing.T, getenv func(string) string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = run(ctx, args, getenv, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestFlagBeatsEnvironment(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     []string
		addr    string
		role    string
		lockout time.Duration
	}{
		{"defaults", nil, nil, ":8080", "all", 5 * time.Minute},
		{"environment", nil, []string{"MFAD_HTTP_ADDR", ":7000", "MFAD_ROLE", "api", "MFAD_LOCKOUT_DURATION", "1m"},
			":7000", "api", time.Minute},
		{"flag", []string{"--http-addr", ":9000", "-role=worker"}, nil, ":9000", "worker", 5 * time.Minute},
		{"flag wins over environment", []string{"--http-addr=:9000", "--lockout-duration", "2h"},
			[]string{"MFAD_HTTP_ADDR", ":7000", "MFAD_ROLE", "api", "MFAD_LOCKOUT_DURATION", "1m"},
			":9000", "api", 2 * time.Hour},
		// A flag given on the command line wins even when it says the default.
		{"explicit default beats environment", []string{"--role", "all"}, []string{"MFAD_ROLE", "worker"},
			":8080", "all", 5 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var cfg Config
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			cfg.register(fs)
			if err := parseFlags(fs, tc.args, env(tc.env...), &bytes.Buffer{}); err != nil {
				t.Fatal(err)
			}
			if cfg.HTTPAddr != tc.addr || cfg.Role != tc.role || cfg.LockoutDuration != tc.lockout {
				t.Fatalf("got addr %q role %q lockout %v, want %q %q %v",
					cfg.HTTPAddr, cfg.Role, cfg.LockoutDuration, tc.addr, tc.role, tc.lockout)
			}
		})
	}
}

// TestUsageErrors: a mistake in a flag or variable is refused before anything starts,
// with one line naming the culprit.
func TestUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  []string
		want string // in the error
	}{
		{"unknown flag", []string{"serve", "--htp-addr", ":1"}, nil, "-htp-addr"},
		{"flag value of the wrong type", []string{"serve", "--totp-digits", "six"}, nil, "-totp-digits"},
		{"bad duration flag", []string{"serve", "--lockout-duration", "5"}, nil, "-lockout-duration"},
		{"stray argument", []string{"serve", "extra"}, nil, `"extra"`},
		{"bad integer variable", []string{"serve"}, []string{"MFAD_TOTP_DIGITS", "six"}, "MFAD_TOTP_DIGITS"},
		{"bad duration variable", []string{"serve"}, []string{"MFAD_LOCKOUT_DURATION", "5"}, "MFAD_LOCKOUT_DURATION"},
		{"bad boolean variable", []string{"serve"}, []string{"MFAD_GROUP_COMMIT", "maybe"}, "MFAD_GROUP_COMMIT"},
		{"unknown role", []string{"serve"}, []string{"MFAD_ROLE", "boss"}, "--role"},
		{"unknown role flag", []string{"serve", "--role", "boss"}, nil, "--role"},
		{"digits out of range", []string{"serve"}, []string{"MFAD_TOTP_DIGITS", "7"}, "--totp-digits"},
		{"period out of range", []string{"serve", "--totp-period", "5"}, nil, "--totp-period"},
		{"replicas out of range", []string{"serve", "--stream-replicas", "0"}, nil, "--stream-replicas"},
		{"events max age too short", []string{"serve", "--events-max-age", "30s"}, nil, "--events-max-age"},
		{"events max age negative", []string{"serve"}, []string{"MFAD_EVENTS_MAX_AGE", "-1h"}, "MFAD_EVENTS_MAX_AGE"},
		{"events max bytes too few", []string{"serve"}, []string{"MFAD_EVENTS_MAX_BYTES", "4096"}, "--events-max-bytes"},
		{"events max bytes not a number", []string{"serve", "--events-max-bytes", "1GB"}, nil, "-events-max-bytes"},
		{"bad mandatory channels", []string{"serve"}, []string{"MFAD_MANDATORY_CHANNELS", "bank-web:fax"}, "bank-web:fax"},
		{"webauthn rp id an IP address", []string{"serve", "--webauthn-rp-id", "127.0.0.1"}, nil, "--webauthn-rp-id"},
		{"webauthn user verification", []string{"serve"}, []string{"MFAD_WEBAUTHN_USER_VERIFICATION", "always"}, "--webauthn-user-verification"},
		{"webauthn attestation", []string{"serve", "--webauthn-attestation", "enterprise"}, nil, "--webauthn-attestation"},
		{"webauthn aaguid", []string{"serve"}, []string{"MFAD_WEBAUTHN_AAGUIDS", "yubikey"}, "yubikey"},
		{"webauthn no port for the default origin", []string{"serve", "--http-addr", "localhost"}, nil, "--webauthn-origins"},
		{"token without sub", []string{"token"}, nil, "--sub"},
		{"token with a long sub", []string{"token", "--sub", strings.Repeat("x", 129)}, nil, "--sub"},
		{"token with a bad ttl", []string{"token", "--sub", "a", "--ttl", "-1h"}, nil, "--ttl"},
		{"token flag of serve", []string{"token", "--sub", "a", "--role", "api"}, nil, "-role"},
		{"unknown command", []string{"serv"}, nil, `"serv"`},
		{"no command", nil, nil, "no command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(t, env(tc.env...), tc.args...)
			var usage usageError
			if !errors.As(err, &usage) {
				t.Fatalf("err = %v (%T), want a usageError", err, err)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q: want one line mentioning %q", msg, tc.want)
			}
		})
	}
}

// TestUsageErrorsWriteNothingElse: besides the one line main prints, a bad flag or
// variable leaves stdout and stderr empty (no flag package dump).
func TestUsageErrorsWriteNothingElse(t *testing.T) {
	for _, args := range [][]string{{"serve", "--nope"}, {"token", "--nope"}} {
		stdout, stderr, err := runCLI(t, env("MFAD_TOTP_DIGITS", "x"), args...)
		if err == nil || stdout != "" || stderr != "" {
			t.Fatalf("%v: err %v, stdout %q, stderr %q", args, err, stdout, stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		stdout, _, err := runCLI(t, env(), args...)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		if len(lines) != 3 || lines[0] != "mfad "+version || !strings.HasPrefix(lines[1], "commit ") ||
			lines[1] == "commit " || !strings.HasPrefix(lines[2], runtime.Version()+" ") {
			t.Fatalf("%v printed %q: want version, commit and Go version lines", args, stdout)
		}
	}
}

// TestVersionHelp: version explains itself on --help like every other command, and
// refuses what it does not take.
func TestVersionHelp(t *testing.T) {
	for _, args := range [][]string{{"version", "--help"}, {"version", "-h"}, {"help", "version"}} {
		stdout, stderr, err := runCLI(t, env(), args...)
		if err != nil || stderr != "" || !strings.HasPrefix(stdout, "Usage: mfad version\n") || strings.Contains(stdout, "\ncommit ") {
			t.Fatalf("%v: err %v, stdout %q, stderr %q", args, err, stdout, stderr)
		}
	}
	for _, args := range [][]string{{"version", "--short"}, {"version", "now"}} {
		stdout, _, err := runCLI(t, env(), args...)
		var usage usageError
		if !errors.As(err, &usage) || stdout != "" {
			t.Fatalf("%v: err %v, stdout %q: want a usage error", args, err, stdout)
		}
	}
}

func TestHelp(t *testing.T) {
	commands := []string{"mfad serve", "mfad gateway", "mfad token", "mfad nats-url", "mfad audit verify", "mfad version", "mfad help"}
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {"help", "help"}} {
		stdout, stderr, err := runCLI(t, env(), args...)
		if err != nil || stderr != "" {
			t.Fatalf("%v: err %v, stderr %q", args, err, stderr)
		}
		for _, c := range commands {
			if !strings.Contains(stdout, c) {
				t.Fatalf("%v does not mention %q:\n%s", args, c, stdout)
			}
		}
	}
	t.Run("no command prints the usage to stderr", func(t *testing.T) {
		stdout, stderr, err := runCLI(t, env())
		if err == nil || stdout != "" || !strings.Contains(stderr, "mfad serve") {
			t.Fatalf("err %v, stdout %q, stderr %q", err, stdout, stderr)
		}
	})
}

// TestServeHelpListsEveryFlag: `mfad serve --help` (and `mfad help serve`) shows every
// setting with its environment variable, including the whole of API.md §6.
func TestServeHelpListsEveryFlag(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.register(fs)
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	documented := []string{"MFAD_HTTP_ADDR", "MFAD_DATA_DIR", "MFAD_NATS_URL", "MFAD_NATS_LISTEN", "MFAD_ROLE",
		"MFAD_JWT_SECRET", "MFAD_JWKS_URL", "MFAD_JWT_ISSUER", "MFAD_JWT_AUDIENCE", "MFAD_INTROSPECTION_URL",
		"MFAD_SECRET_KEY", "MFAD_TOTP_ISSUER", "MFAD_MAX_TOTP_DEVICES", "MFAD_LOCKOUT_THRESHOLD",
		"MFAD_LOCKOUT_DURATION", "MFAD_MANDATORY_CHANNELS", "MFAD_STEPUP_MAX_AGE"}

	for _, args := range [][]string{{"serve", "--help"}, {"serve", "-h"}, {"help", "serve"}} {
		stdout, _, err := runCLI(t, env(), args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		for _, n := range names {
			line := regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(n) + `\b`)
			if !line.MatchString(stdout) || !strings.Contains(stdout, "["+envName(n)+"]") {
				t.Fatalf("%v: flag -%s or [%s] missing:\n%s", args, n, envName(n), stdout)
			}
		}
		for _, v := range documented {
			if !strings.Contains(stdout, "["+v+"]") {
				t.Fatalf("%v: API.md §6 variable %s missing", args, v)
			}
		}
	}
}

func TestEnvName(t *testing.T) {
	for flagName, want := range map[string]string{
		"http-addr": "MFAD_HTTP_ADDR", "role": "MFAD_ROLE", "introspection-client-id": "MFAD_INTROSPECTION_CLIENT_ID",
	} {
		if got := envName(flagName); got != want {
			t.Errorf("envName(%q) = %q, want %q", flagName, got, want)
		}
	}
}

// parseToken checks tok's HS256 signature with secret and returns its claims.
func parseToken(t *testing.T, tok string, secret []byte) jwt.MapClaims {
	t.Helper()
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired()).
		ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return secret, nil })
	if err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	return claims
}

func TestTokenUsesTheDevSecret(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	// The server creates the dev secret at its first start, as it does here.
	served, dev, err := (&Config{DataDir: dir}).jwtSecret()
	if err != nil || !dev {
		t.Fatalf("serve's dev secret: dev %v, err %v", dev, err)
	}
	before := time.Now().Unix()
	stdout, stderr, err := runCLI(t, env(), "token", "--sub", "alice", "--data-dir", dir)
	if err != nil || stderr != "" {
		t.Fatalf("err %v, stderr %q", err, stderr)
	}
	if !strings.HasSuffix(stdout, "\n") || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("token printed %q: want the token alone on one line", stdout)
	}
	raw, err := os.ReadFile(filepath.Join(dir, devJWTSecretFile))
	if err != nil {
		t.Fatalf("dev secret file: %v", err)
	}
	secret, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(secret) != 32 || !bytes.Equal(served, secret) {
		t.Fatalf("dev secret file holds %q: want the server's base64 32-byte key", raw)
	}
	// What the server verifies with is what signed.
	c := parseToken(t, strings.TrimSpace(stdout), secret)
	exp, _ := c.GetExpirationTime()
	iat, _ := c.GetIssuedAt()
	if c["sub"] != "alice" || exp == nil || iat == nil || iat.Unix() < before ||
		exp.Sub(iat.Time) != time.Hour || c["scope"] != nil || c["iss"] != nil || c["aud"] != nil {
		t.Fatalf("claims %v: want sub alice, a one-hour lifetime and nothing else set", c)
	}

	// A second token uses the same file.
	stdout2, _, err := runCLI(t, env(), "token", "--sub", "bob", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	if parseToken(t, strings.TrimSpace(stdout2), secret)["sub"] != "bob" {
		t.Fatal("second token has the wrong sub")
	}
	st, err := os.Stat(filepath.Join(dir, devJWTSecretFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("dev secret file mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
}

// TestTokenNeverCreatesASecret: with no secret configured and none in the data dir,
// token fails, naming the data dir it looked in, and leaves nothing behind: a secret it
// made up would sign tokens that no server accepts.
func TestTokenNeverCreatesASecret(t *testing.T) {
	parent := t.TempDir()
	cases := []struct{ name, dir string }{
		{"no data dir", filepath.Join(parent, "missing")},
		{"empty data dir", parent},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stdout, _, err := runCLI(t, env(), "token", "--sub", "alice", "--data-dir", tc.dir)
			if err == nil || stdout != "" {
				t.Fatalf("token printed %q, err %v: want a failure", stdout, err)
			}
			if !strings.Contains(err.Error(), "the data dir "+tc.dir+" holds no "+devJWTSecretFile) ||
				!strings.Contains(err.Error(), "MFAD_JWT_SECRET") {
				t.Fatalf("error %q does not name the data dir and the way out", err)
			}
			if _, err := os.Stat(filepath.Join(tc.dir, devJWTSecretFile)); !os.IsNotExist(err) {
				t.Fatalf("token created a secret (%v)", err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(parent, "missing")); !os.IsNotExist(err) {
		t.Fatalf("token created the data dir (%v)", err)
	}
	// A relative --data-dir is named as the absolute path it resolves to.
	t.Chdir(parent)
	_, _, err := runCLI(t, env(), "token", "--sub", "alice")
	if err == nil || !strings.Contains(err.Error(), filepath.Join(parent, "data")) {
		t.Fatalf("error %v does not name %s", err, filepath.Join(parent, "data"))
	}
}

func TestTokenClaims(t *testing.T) {
	const secret = "a-configured-hs256-secret-at-least-32-bytes"
	now := time.Now()
	stdout, _, err := runCLI(t, env("MFAD_JWT_SECRET", secret, "MFAD_JWT_ISSUER", "https://id.example.com"),
		"token", "--sub", "svc", "--scope", "openid mfa:admin", "--ttl", "10m", "--auth-age", "20m",
		"--jwt-audience", "mfad-api", "--data-dir", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := parseToken(t, strings.TrimSpace(stdout), []byte(secret))
	exp, _ := c.GetExpirationTime()
	iat, _ := c.GetIssuedAt()
	authTime, _ := c["auth_time"].(float64)
	if c["sub"] != "svc" || c["scope"] != "openid mfa:admin" || c["iss"] != "https://id.example.com" ||
		c["aud"] != "mfad-api" || exp.Sub(iat.Time) != 10*time.Minute {
		t.Fatalf("claims %v", c)
	}
	if d := now.Add(-20*time.Minute).Unix() - int64(authTime); d < -2 || d > 2 {
		t.Fatalf("auth_time %v is not 20 minutes ago", authTime)
	}
}

// TestTokenSecretPrecedence: --jwt-secret beats MFAD_JWT_SECRET beats the dev secret.
func TestTokenSecretPrecedence(t *testing.T) {
	const fromEnv, fromFlag = "secret-from-the-environment-0123456789", "secret-from-the-command-line-012345678"
	dir := t.TempDir()
	cases := []struct {
		name   string
		env    []string
		args   []string
		secret string
	}{
		{"environment", []string{"MFAD_JWT_SECRET", fromEnv}, nil, fromEnv},
		{"flag over environment", []string{"MFAD_JWT_SECRET", fromEnv}, []string{"--jwt-secret", fromFlag}, fromFlag},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stdout, _, err := runCLI(t, env(tc.env...), append([]string{"token", "--sub", "a", "--data-dir", dir}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			parseToken(t, strings.TrimSpace(stdout), []byte(tc.secret))
		})
	}
	if _, err := os.Stat(filepath.Join(dir, devJWTSecretFile)); !os.IsNotExist(err) {
		t.Fatalf("a dev secret was created although a secret was configured (%v)", err)
	}
	t.Run("short secret", func(t *testing.T) {
		if _, _, err := runCLI(t, env("MFAD_JWT_SECRET", "short"), "token", "--sub", "a"); err == nil ||
			!strings.Contains(err.Error(), "32 bytes") {
			t.Fatalf("err = %v, want the 32-byte minimum named", err)
		}
	})
}

func TestLoadOrCreateKeyRefusesACorruptFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, devJWTSecretFile), []byte("not base64!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateKey(dir, devJWTSecretFile); err == nil {
		t.Fatal("a corrupt key file was accepted")
	}
}

// TestTokenOnlyFlagsIgnoreTheEnvironment: --sub, --scope, --ttl and --auth-age have no
// variable (--help shows none), so MFAD_SUB and friends change nothing.
func TestTokenOnlyFlagsIgnoreTheEnvironment(t *testing.T) {
	const secret = "a-configured-hs256-secret-at-least-32-bytes"
	getenv := env("MFAD_JWT_SECRET", secret, "MFAD_SUB", "root", "MFAD_SCOPE", "mfa:admin", "MFAD_TTL", "999h")
	if _, _, err := runCLI(t, getenv, "token"); err == nil {
		t.Fatal("MFAD_SUB stood in for --sub")
	}
	stdout, _, err := runCLI(t, getenv, "token", "--sub", "alice")
	if err != nil {
		t.Fatal(err)
	}
	c := parseToken(t, strings.TrimSpace(stdout), []byte(secret))
	exp, _ := c.GetExpirationTime()
	iat, _ := c.GetIssuedAt()
	if c["sub"] != "alice" || c["scope"] != nil || exp.Sub(iat.Time) != time.Hour {
		t.Fatalf("claims %v: the environment leaked into token-only flags", c)
	}
}
