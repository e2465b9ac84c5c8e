package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/channels"
)

// Config is every setting of mfad serve. Defaults need nothing set: embedded NATS and
// SQLite under ./data, a generated development signing secret and sealing key.
type Config struct {
	HTTPAddr    string
	DataDir     string
	DatabaseURL string
	NATSURL     string
	NATSListen  string
	NATSCreds   string
	// NATSUsersFile holds the passwords of the embedded server's outside users.
	NATSUsersFile string
	Role          string

	JWTSecret           string
	JWKSURL             string
	JWTIssuer           string
	JWTAudience         string
	IntrospectionURL    string
	IntrospectionID     string
	IntrospectionSecret string
	IntrospectionWait   time.Duration

	SecretKey string
	AuditKey  string

	TOTPIssuer         string
	TOTPAlgorithm      string
	TOTPDigits         int
	TOTPPeriod         int
	MaxTOTPDevices     int
	LockoutThreshold   int
	LockoutDuration    time.Duration
	LockoutMaxDuration time.Duration
	LockoutMaxFailures int
	CodeSendLimit      int
	CodeSendWindow     time.Duration
	MandatoryChannels  string
	StepUpMaxAge       time.Duration

	WebAuthnRPID             string
	WebAuthnRPName           string
	WebAuthnOrigins          string
	WebAuthnUserVerification string
	WebAuthnAllowSynced      bool
	WebAuthnAAGUIDs          string
	WebAuthnAttestation      string
	MaxWebAuthnCredentials   int

	StreamReplicas    int
	EventsMaxAge      limitFlag[time.Duration]
	EventsMaxBytes    limitFlag[int64]
	IngestMaxAttempts int
	CommandTimeout    time.Duration
	GroupCommit       bool
	BatchSize         int
	BatchWait         time.Duration
	WritePipelines    int
	ReadCacheMB       int
	RelayLease        time.Duration
	ShutdownTimeout   time.Duration
	LogLevel          string
	LogFormat         string
	DebugAddr         string
}

// secretFlags are masked when the configuration is logged.
var secretFlags = map[string]bool{"jwt-secret": true, "secret-key": true, "audit-key": true, "introspection-secret": true, "sms-password": true}

// register defines the flags of serve (and, for the token and audit commands, the
// subset they need) on fs.
func (c *Config) register(fs *flag.FlagSet) {
	fs.StringVar(&c.HTTPAddr, "http-addr", ":8080", "HTTP listen address")
	fs.StringVar(&c.DataDir, "data-dir", "./data", "directory of mfad.db, the JetStream store (nats/) and generated keys")
	c.registerDatabaseURL(fs)
	fs.StringVar(&c.NATSURL, "nats-url", "", "external NATS server(s), comma-separated; empty starts the embedded server")
	fs.StringVar(&c.NATSListen, "nats-listen", "127.0.0.1:4222", "client listen address of the embedded NATS server")
	fs.StringVar(&c.NATSCreds, "nats-creds", "", "NATS credentials file (external NATS)")
	fs.StringVar(&c.NATSUsersFile, "nats-users-file", "", "JSON file of the embedded NATS server's outside users and their passwords (gateway, auditor, producer; mfad nats-url); empty = <data-dir>/nats-users.json, generated at first start")
	fs.StringVar(&c.Role, "role", "all", "what this process runs: all, api or worker")

	fs.StringVar(&c.JWTSecret, "jwt-secret", "", "HS256 secret for bearer tokens (at least 32 bytes); empty with no JWKS/introspection = a generated dev secret")
	fs.StringVar(&c.JWKSURL, "jwks-url", "", "JWKS URL for RS256/ES256/EdDSA bearer tokens")
	fs.StringVar(&c.JWTIssuer, "jwt-issuer", "", "required iss of tokens, when set")
	fs.StringVar(&c.JWTAudience, "jwt-audience", "", "required aud of tokens, when set")
	fs.StringVar(&c.IntrospectionURL, "introspection-url", "", "RFC 7662 introspection endpoint; when set it decides token validity")
	fs.StringVar(&c.IntrospectionID, "introspection-client-id", "", "client id for the introspection endpoint")
	fs.StringVar(&c.IntrospectionSecret, "introspection-secret", "", "client secret for the introspection endpoint")
	fs.DurationVar(&c.IntrospectionWait, "introspection-timeout", 3*time.Second, "introspection timeout; beyond it requests answer 504")

	fs.StringVar(&c.SecretKey, "secret-key", "", "base64 AES-256 key(s) sealing secrets at rest, comma-separated, first seals; empty = generated key file in the data dir")
	c.registerAuditKey(fs)

	fs.StringVar(&c.TOTPIssuer, "totp-issuer", "mfad", "issuer shown in authenticator apps")
	fs.StringVar(&c.TOTPAlgorithm, "totp-algorithm", "SHA1", "TOTP HMAC algorithm of new devices: SHA1, SHA256 or SHA512")
	fs.IntVar(&c.TOTPDigits, "totp-digits", 6, "TOTP code length of new devices: 6 or 8")
	fs.IntVar(&c.TOTPPeriod, "totp-period", 30, "TOTP time step of new devices, seconds")
	fs.IntVar(&c.MaxTOTPDevices, "max-totp-devices", 5, "verified TOTP devices per user")
	fs.IntVar(&c.LockoutThreshold, "lockout-threshold", 5, "consecutive failed code checks per lock: every one of that many starts a lock")
	fs.DurationVar(&c.LockoutDuration, "lockout-duration", 5*time.Minute, "how long the first lock lasts; each next one lasts twice as long")
	fs.DurationVar(&c.LockoutMaxDuration, "lockout-max-duration", 24*time.Hour, "the longest lock")
	fs.IntVar(&c.LockoutMaxFailures, "lockout-max-failures", 100, "consecutive failed code checks after which a user stays locked until an admin reset")
	fs.IntVar(&c.CodeSendLimit, "code-send-limit", 5, "SMS/e-mail codes sent to one user per --code-send-window at most (each is a paid message)")
	fs.DurationVar(&c.CodeSendWindow, "code-send-window", 15*time.Minute, "the window of --code-send-limit")
	fs.StringVar(&c.MandatoryChannels, "mandatory-channels", "", "entry point:channel pairs users may not remove, e.g. bank-web:sms,bank-app:totp")
	fs.StringVar(&c.WebAuthnRPID, "webauthn-rp-id", "localhost", "WebAuthn relying party id: the domain passkeys are bound to (not an IP address)")
	fs.StringVar(&c.WebAuthnRPName, "webauthn-rp-name", "mfad", "WebAuthn relying party name, shown by browsers")
	fs.StringVar(&c.WebAuthnOrigins, "webauthn-origins", "", "origins WebAuthn answers may come from, comma-separated: https://id.example.com, android:apk-key-hash:…; empty = http://localhost:<port of --http-addr>")
	fs.StringVar(&c.WebAuthnUserVerification, "webauthn-user-verification", "preferred", "WebAuthn user verification (PIN, biometrics): preferred (reported in the verify answer) or required")
	fs.BoolVar(&c.WebAuthnAllowSynced, "webauthn-allow-synced", true, "accept backup-eligible (synced) passkeys; false allows device-bound keys only")
	fs.StringVar(&c.WebAuthnAAGUIDs, "webauthn-aaguids", "", "if set, the only authenticator models (AAGUIDs, comma-separated) a credential may be registered with")
	fs.StringVar(&c.WebAuthnAttestation, "webauthn-attestation", "none", "attestation asked of authenticators at registration: none, indirect or direct")
	fs.IntVar(&c.MaxWebAuthnCredentials, "max-webauthn-credentials", 10, "security keys and passkeys per user")
	fs.DurationVar(&c.StepUpMaxAge, "stepup-max-age", 0, "if set, adding or removing a factor and turning MFA sign-in on or off need a token with auth_time this recent (RFC 9470)")

	fs.IntVar(&c.StreamReplicas, "stream-replicas", 1, "replicas of the JetStream streams")
	fs.Var(&c.EventsMaxAge, "events-max-age", "if set, MFA_EVENTS drops events older than this (at least 1m; 0 lifts the limit); unset, the stream keeps the limit it has (none, or an operator's)")
	fs.Var(&c.EventsMaxBytes, "events-max-bytes", "if set, MFA_EVENTS drops its oldest events beyond this many bytes (at least 1 MiB, reserved in JetStream's storage at once; 0 lifts the limit); unset, as --events-max-age")
	fs.IntVar(&c.IngestMaxAttempts, "ingest-max-attempts", 10, "deliveries of an activity from MFA_ACTIVITIES before it is rejected as undeliverable")
	fs.DurationVar(&c.CommandTimeout, "command-timeout", 5*time.Second, "how long the API waits for a worker's reply")
	fs.BoolVar(&c.GroupCommit, "group-commit", true, "commit concurrent write commands together (one fsync per batch)")
	fs.IntVar(&c.BatchSize, "batch-size", 128, "most write commands per group commit")
	fs.DurationVar(&c.BatchWait, "batch-wait", 0, "how long a group commit waits for more commands once the queue is empty")
	fs.IntVar(&c.WritePipelines, "write-pipelines", 1, "PostgreSQL: group commits running at once per worker, commands shared among them by user (SQLite always has one writer)")
	fs.IntVar(&c.ReadCacheMB, "read-cache-mb", 32, "SQLite: MB of read answers (status, device lists, backup-code counts) a worker keeps until the user's next write; 0 = none (PostgreSQL: none, several workers write it)")
	fs.DurationVar(&c.RelayLease, "relay-lease", 10*time.Second, "PostgreSQL: how long the relay lease of MFA_EVENTS lasts unrenewed; a dead holder's is taken over after this")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long shutdown waits for in-flight work; HTTP requests get half of it, then the connections still open are closed, so the workers and the outbox drain in the rest")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", logFormatAuto, "text, json, or auto: text on a terminal, JSON otherwise")
	fs.StringVar(&c.DebugAddr, "debug-addr", "", "listen address for Go's /debug/pprof profiles, /metrics and the /healthz and /readyz probes (e.g. 127.0.0.1:6060; a worker-only process's only listener); empty = off")
	annotateEnv(fs)
}

// annotateEnv appends each flag's environment variable to its help text.
func annotateEnv(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) { f.Usage += " [" + envName(f.Name) + "]" })
}

func (c *Config) check() error {
	switch c.Role {
	case "all", "api", "worker":
	default:
		return usageError{fmt.Sprintf("--role must be all, api or worker, not %q", c.Role)}
	}
	if _, err := c.mandatory(); err != nil {
		return err
	}
	if c.TOTPDigits != 6 && c.TOTPDigits != 8 {
		return usageError{fmt.Sprintf("--totp-digits must be 6 or 8, not %d", c.TOTPDigits)}
	}
	if c.TOTPPeriod < 15 || c.TOTPPeriod > 120 {
		return usageError{fmt.Sprintf("--totp-period must be 15 to 120 seconds, not %d", c.TOTPPeriod)}
	}
	if err := checkLogFormat(c.LogFormat); err != nil {
		return err
	}
	if c.LockoutThreshold < 1 || c.LockoutMaxFailures < c.LockoutThreshold {
		return usageError{fmt.Sprintf("--lockout-max-failures (%d) must be at least --lockout-threshold (%d), which must be positive", c.LockoutMaxFailures, c.LockoutThreshold)}
	}
	if c.LockoutDuration <= 0 || c.LockoutMaxDuration < c.LockoutDuration {
		return usageError{fmt.Sprintf("--lockout-max-duration (%s) must be at least --lockout-duration (%s), which must be positive", c.LockoutMaxDuration, c.LockoutDuration)}
	}
	if c.DatabaseURL != "" && !isPostgresURL(c.DatabaseURL) {
		return usageError{"--database-url must be a PostgreSQL URL (postgres://…) or connection string (host=… dbname=…); leave it empty for SQLite in the data dir"}
	}
	if c.WritePipelines < 1 || c.WritePipelines > 64 {
		return usageError{fmt.Sprintf("--write-pipelines must be 1 to 64, not %d", c.WritePipelines)}
	}
	if c.ReadCacheMB < 0 || c.ReadCacheMB > 1024 {
		return usageError{fmt.Sprintf("--read-cache-mb must be 0 to 1024, not %d", c.ReadCacheMB)}
	}
	if c.RelayLease < 3*time.Second {
		return usageError{fmt.Sprintf("--relay-lease must be at least 3s, not %s", c.RelayLease)}
	}
	if _, err := c.webauthn(); err != nil {
		return err
	}
	if v := c.EventsMaxAge.ptr(); v != nil && *v != 0 && *v < time.Minute {
		return usageError{fmt.Sprintf("--events-max-age must be 0 (no limit) or at least 1m, not %s", *v)}
	}
	if v := c.EventsMaxBytes.ptr(); v != nil && *v != 0 && *v < 1<<20 {
		return usageError{fmt.Sprintf("--events-max-bytes must be 0 (no limit) or at least 1048576, not %d", *v)}
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		return usageError{fmt.Sprintf("--stream-replicas must be 1 to 5, not %d", c.StreamReplicas)}
	}
	return nil
}

func (c *Config) runsAPI() bool    { return c.Role == "all" || c.Role == "api" }
func (c *Config) runsWorker() bool { return c.Role == "all" || c.Role == "worker" }

func (c *Config) dbPath() string { return filepath.Join(c.DataDir, "mfad.db") }

// registerDatabaseURL defines --database-url (serve, audit verify).
func (c *Config) registerDatabaseURL(fs *flag.FlagSet) {
	fs.StringVar(&c.DatabaseURL, "database-url", "", "PostgreSQL URL shared by every worker (postgres://user:pass@host1,host2/mfad?target_session_attrs=read-write); empty = SQLite in the data dir")
}

// isPostgresURL accepts the two forms pgx parses: a URL and a key=value string.
func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") || strings.Contains(s, "=")
}

// pipelines is the number of write pipelines: one on SQLite (a single writer); on
// PostgreSQL as configured. One is the default there too: with the database on the
// same few cores, more transactions at once only contended (BENCHMARKS.md); several
// pay when the database has a host of its own and a network round trip away.
func (c *Config) pipelines() int {
	if c.DatabaseURL == "" {
		return 1
	}
	return c.WritePipelines
}

// mandatory parses MFAD_MANDATORY_CHANNELS: "bank-web:sms,bank-app:totp".
func (c *Config) mandatory() (map[string]map[mfa.Kind]bool, error) {
	out := map[string]map[mfa.Kind]bool{}
	for _, pair := range strings.Split(c.MandatoryChannels, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		ep, ch, ok := strings.Cut(pair, ":")
		kind, known := mfa.ParseKind(strings.TrimSpace(ch))
		if !ok || strings.TrimSpace(ep) == "" || !known {
			return nil, usageError{fmt.Sprintf("--mandatory-channels: %q is not entry-point:channel with channel sms, email, totp or webauthn", pair)}
		}
		ep = strings.TrimSpace(ep)
		if out[ep] == nil {
			out[ep] = map[mfa.Kind]bool{}
		}
		out[ep][kind] = true
	}
	return out, nil
}

// webauthn is the WebAuthn policy of the workers. The default origin follows the HTTP
// port, so the embedded default works in a browser on the same machine; a worker must
// know it before it starts, since it checks every answer against it.
func (c *Config) webauthn() (channels.WebAuthnPolicy, error) {
	p := channels.WebAuthnPolicy{
		RPID:           strings.TrimSpace(c.WebAuthnRPID),
		RPName:         c.WebAuthnRPName,
		RefuseSynced:   !c.WebAuthnAllowSynced,
		Attestation:    c.WebAuthnAttestation,
		MaxCredentials: c.MaxWebAuthnCredentials,
	}
	if p.RPID == "" || net.ParseIP(strings.Trim(p.RPID, "[]")) != nil {
		return p, usageError{fmt.Sprintf("--webauthn-rp-id must be a domain (browsers refuse an IP address), not %q", c.WebAuthnRPID)}
	}
	switch c.WebAuthnUserVerification {
	case "preferred":
	case "required":
		p.RequireUserVerification = true
	default:
		return p, usageError{fmt.Sprintf("--webauthn-user-verification must be preferred or required, not %q", c.WebAuthnUserVerification)}
	}
	switch c.WebAuthnAttestation {
	case "none", "indirect", "direct":
	default:
		return p, usageError{fmt.Sprintf("--webauthn-attestation must be none, indirect or direct, not %q", c.WebAuthnAttestation)}
	}
	if c.MaxWebAuthnCredentials < 1 {
		return p, usageError{fmt.Sprintf("--max-webauthn-credentials must be positive, not %d", c.MaxWebAuthnCredentials)}
	}
	for _, o := range strings.Split(c.WebAuthnOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			p.Origins = append(p.Origins, o)
		}
	}
	if len(p.Origins) == 0 {
		_, port, err := net.SplitHostPort(c.HTTPAddr)
		if err != nil || port == "" {
			return p, usageError{fmt.Sprintf("--webauthn-origins is empty and --http-addr %q has no port to make the default origin from", c.HTTPAddr)}
		}
		p.Origins = []string{"http://localhost:" + port}
	}
	for _, a := range strings.Split(c.WebAuthnAAGUIDs, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		id, err := uuid.Parse(a)
		if err != nil {
			return p, usageError{fmt.Sprintf("--webauthn-aaguids: %q is not a UUID", a)}
		}
		p.AAGUIDs = append(p.AAGUIDs, id)
	}
	return p, nil
}

// sealingKeys decodes MFAD_SECRET_KEY (comma-separated base64 keys).
func (c *Config) sealingKeys() ([][]byte, error) { return decodeKeys("MFAD_SECRET_KEY", c.SecretKey) }

// decodeKeys decodes a comma-separated list of base64 32-byte keys.
func decodeKeys(name, list string) ([][]byte, error) {
	var keys [][]byte
	for i, k := range strings.Split(list, ",") {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		b, err := decodeKey(k)
		if err != nil {
			return nil, fmt.Errorf("%s key %d: %w", name, i+1, err)
		}
		keys = append(keys, b)
	}
	return keys, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("decodes to %d bytes, want 32", len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// redactURLs hides credentials in URL settings (MFAD_NATS_URL may be a comma-separated
// list): nats://user:pass@host keeps the user, and nats://token@host, where the user
// part is the token, loses it all.
func redactURLs(v string) string {
	parts := strings.Split(v, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			continue
		}
		if _, hasPassword := u.User.Password(); hasPassword {
			parts[i] = u.Redacted()
			continue
		}
		u.User = url.User("xxxxx")
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

// limitFlag is a flag that tells "not given" from any value, 0 included: a limit that
// is not given is left as it is, and 0 lifts it.
type limitFlag[T time.Duration | int64] struct {
	v   T
	set bool
}

// ptr is the value, nil when it was not given.
func (o *limitFlag[T]) ptr() *T {
	if !o.set {
		return nil
	}
	return &o.v
}

func (o *limitFlag[T]) String() string {
	if o == nil || !o.set {
		return ""
	}
	if d, ok := any(o.v).(time.Duration); ok {
		return d.String()
	}
	return strconv.FormatInt(int64(o.v), 10)
}

func (o *limitFlag[T]) Set(s string) error {
	var v T
	switch p := any(&v).(type) {
	case *time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*p = d
	case *int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		*p = n
	}
	if v < 0 {
		return fmt.Errorf("%s is negative", s)
	}
	o.v, o.set = v, true
	return nil
}
