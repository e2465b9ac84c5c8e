package handlers

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	mfa "github.com/mfad/mfad"
)

// AdminScope grants the admin endpoints and acting for another user.
const AdminScope = "mfa:admin"

// Leeway is the clock skew tolerated on exp, nbf and iat (API.md §0).
const Leeway = 60 * time.Second

// Principal is the authenticated caller.
type Principal struct {
	Subject  string
	Scopes   []string
	AuthTime time.Time // zero when the token does not say
}

// Admin reports whether the caller holds the admin scope.
func (p Principal) Admin() bool { return slices.Contains(p.Scopes, AdminScope) }

// AuthConfig says how tokens are validated. With IntrospectionURL set, the
// authorization server decides (RFC 7662) and tokens may be opaque; otherwise JWTs are
// checked locally against HMACSecret (HS256) and/or the keys at JWKSURL.
type AuthConfig struct {
	HMACSecret           []byte
	JWKSURL              string
	Issuer               string
	Audience             string
	IntrospectionURL     string
	IntrospectionID      string // client credentials for the introspection endpoint
	IntrospectionSecret  string
	IntrospectionTimeout time.Duration
	HTTPClient           *http.Client
	Now                  func() time.Time
}

// Authenticator validates bearer tokens.
type Authenticator struct {
	cfg        AuthConfig
	parser     *jwt.Parser
	jwks       *jwks
	introspect *introspector
	verified   *tokenCache
}

// Authentication failures. errAuthUnavailable is the introspection server not
// answering: 504, as DruID documents.
var (
	errNoToken         = errors.New("no bearer token")
	errAuthUnavailable = errors.New("authorization server unreachable")
	errBadSubject      = errors.New("sub is not 1 to 128 characters of printable UTF-8")
	errNotUTF8         = errors.New("the claims are not UTF-8")
	errTimeNotNumber   = errors.New("a time claim is not a JSON number")
	errCrit            = errors.New("the token has a crit header")
	errUnknownKey      = errors.New("no key with the token's kid")
	errInactive        = errors.New("the token is not active")
)

// NewAuthenticator checks cfg and returns an Authenticator.
func NewAuthenticator(cfg AuthConfig) (*Authenticator, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.IntrospectionTimeout <= 0 {
		cfg.IntrospectionTimeout = 3 * time.Second
	}
	a := &Authenticator{cfg: cfg}
	if cfg.IntrospectionURL != "" {
		a.introspect = &introspector{cfg: cfg}
		return a, nil
	}
	var methods []string
	if len(cfg.HMACSecret) > 0 {
		if len(cfg.HMACSecret) < 32 {
			return nil, fmt.Errorf("the HS256 secret is %d bytes, want at least 32", len(cfg.HMACSecret))
		}
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if cfg.JWKSURL != "" {
		a.jwks = newJWKS(cfg.JWKSURL, cfg.HTTPClient, cfg.Now)
		methods = append(methods, "RS256", "ES256", "EdDSA")
	}
	if len(methods) == 0 {
		return nil, errors.New("no token key: set a JWT secret, a JWKS URL or an introspection URL")
	}
	opts := []jwt.ParserOption{
		// alg must be one we configured keys for: "none" and any algorithm we did not
		// choose (the HS/RS confusion attack) are refused before the key is looked up.
		jwt.WithValidMethods(methods),
		jwt.WithLeeway(Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(cfg.Now),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	a.parser = jwt.NewParser(opts...)
	a.verified = newTokenCache(cfg.Now)
	return a, nil
}

// claims are the JWT claims mfad reads.
type claims struct {
	jwt.RegisteredClaims
	Scope    scopes           `json:"scope,omitempty"`
	AuthTime *jwt.NumericDate `json:"auth_time,omitempty"`
}

// scopes accepts the RFC 8693 space-separated string and the common array form.
type scopes []string

func (s *scopes) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		*s = splitScope(str)
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("scope is neither a string nor an array of strings")
	}
	*s = list
	return nil
}

// splitScope splits an RFC 6749 scope string: scope tokens are separated by spaces
// (%x20) only, so "mfa:admin\tx" or "mfa:admin,x" is one scope, and not the admin one.
func splitScope(s string) []string {
	var out []string
	for _, sc := range strings.Split(s, " ") {
		if sc != "" {
			out = append(out, sc)
		}
	}
	return out
}

// Authenticate validates a bearer token and returns the caller.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (Principal, error) {
	if a.introspect != nil {
		return a.introspect.check(ctx, token)
	}
	keys := a.jwks.current() // before verifying: a set fetched meanwhile voids this check
	if p, ok := a.verified.get(token, keys); ok {
		return p, nil
	}
	var cl claims
	tok, err := a.parser.ParseWithClaims(token, &cl, func(t *jwt.Token) (any, error) {
		if _, ok := t.Method.(*jwt.SigningMethodHMAC); ok {
			return a.cfg.HMACSecret, nil
		}
		if a.jwks == nil {
			return nil, errors.New("no JWKS configured")
		}
		kid, _ := t.Header["kid"].(string)
		return a.jwks.key(ctx, kid, t.Method.Alg())
	})
	if err == nil {
		err = checkJWT(tok)
	}
	if err != nil {
		if errors.Is(err, errAuthUnavailable) {
			return Principal{}, err
		}
		return Principal{}, fmt.Errorf("invalid token: %w", err)
	}
	p := Principal{Subject: cl.Subject, Scopes: cl.Scope}
	if cl.AuthTime != nil {
		p.AuthTime = cl.AuthTime.Time
	}
	if err := checkSubject(p.Subject); err != nil {
		return p, err
	}
	a.verified.put(token, p, cl.ExpiresAt.Time, keys) // exp is required: the parser checked it
	return p, nil
}

// timeClaims must be JSON numbers (RFC 7519 NumericDate); the JWT library would also
// take a string holding one.
var timeClaims = []string{"exp", "nbf", "iat", "auth_time"}

// checkJWT refuses what the JWT library lets through: a crit header (RFC 7515 §4.1.11:
// mfad understands no extension, so it must refuse every token that lists one), claims
// that are not UTF-8 (encoding/json would quietly turn the bytes into U+FFFD, and two
// different subs into one) and time claims that are strings.
func checkJWT(tok *jwt.Token) error {
	if _, ok := tok.Header["crit"]; ok {
		return errCrit
	}
	parts := strings.Split(tok.Raw, ".")
	if len(parts) != 3 {
		return jwt.ErrTokenMalformed
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return jwt.ErrTokenMalformed
	}
	if !utf8.Valid(payload) {
		return errNotUTF8
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(payload, &raw); err != nil {
		return jwt.ErrTokenMalformed
	}
	for _, name := range timeClaims {
		if v, ok := raw[name]; ok && !isJSONNumber(v) {
			return fmt.Errorf("%w: %s", errTimeNotNumber, name)
		}
	}
	return nil
}

func isJSONNumber(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) > 0 && (v[0] == '-' || v[0] >= '0' && v[0] <= '9')
}

// checkSubject is the rule for every user id: the token's sub and the user ids a
// request names (checkUserID).
func checkSubject(sub string) error {
	if !mfa.ValidUserID(sub) {
		return errBadSubject
	}
	return nil
}

// authenticate is the middleware that puts the Principal on the request.
func authenticate(a *Authenticator) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			token, ok := bearer(c.Request().Header.Get(echo.HeaderAuthorization))
			if !ok {
				return &authFailure{code: mfa.CodeUnauthorized, cause: errNoToken}
			}
			p, err := a.Authenticate(c.Request().Context(), token)
			if errors.Is(err, errAuthUnavailable) {
				return &authFailure{code: mfa.CodeGatewayTimeout, cause: err}
			}
			if err != nil {
				return &authFailure{code: mfa.CodeUnauthorized, cause: err}
			}
			c.Set(principalKey, p)
			return next(c)
		}
	}
}

// bearer extracts the token of an RFC 6750 Authorization header.
func bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// requireAdmin refuses callers without the admin scope (403 insufficient_scope).
func requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !principal(c).Admin() {
			return &authFailure{code: mfa.CodeForbidden, cause: errNotAdmin}
		}
		return next(c)
	}
}

// requireRecentAuth implements RFC 9470 step-up for removals and disabling MFA: with a
// maximum age set, the token's auth_time must be that recent.
func requireRecentAuth(maxAge time.Duration, now func() time.Time) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if maxAge <= 0 {
			return next
		}
		return func(c echo.Context) error {
			at := principal(c).AuthTime
			if at.IsZero() || now().Sub(at) > maxAge {
				return &authFailure{code: mfa.CodeStepUpRequired, maxAge: maxAge, cause: errStale}
			}
			return next(c)
		}
	}
}

const principalKey = "mfad.principal"

var (
	errNotAdmin = errors.New("admin scope required")
	errStale    = errors.New("authentication is older than the step-up maximum age")
)

// authReason is why a token was refused, in words fit for a log line: a fixed phrase
// per cause, never anything taken from the token.
func authReason(err error) string {
	for _, r := range []struct {
		err    error
		reason string
	}{
		{errNoToken, "no bearer token"},
		{errAuthUnavailable, "authorization server unreachable"},
		{errNotAdmin, "admin scope required"},
		{errStale, "authentication too old for step-up"},
		{errInactive, "not active"},
		{errIntrospectExpired, "expired"},
		{errIntrospectIssuer, "wrong issuer"},
		{errIntrospectAudience, "wrong audience"},
		{errCrit, "crit header"},
		{errNotUTF8, "claims not UTF-8"},
		{errTimeNotNumber, "time claim not a number"},
		{errBadSubject, "bad sub"},
		{errUnknownKey, "unknown key"},
		{jwt.ErrTokenExpired, "expired"},
		{jwt.ErrTokenNotValidYet, "not yet valid"},
		{jwt.ErrTokenUsedBeforeIssued, "issued in the future"},
		{jwt.ErrTokenInvalidAudience, "wrong audience"},
		{jwt.ErrTokenInvalidIssuer, "wrong issuer"},
		{jwt.ErrTokenRequiredClaimMissing, "missing claim"},
		{jwt.ErrTokenSignatureInvalid, "bad signature or algorithm"},
		{jwt.ErrTokenUnverifiable, "no key for the token"},
		{jwt.ErrTokenMalformed, "malformed"},
		{jwt.ErrTokenInvalidClaims, "invalid claims"},
	} {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "invalid"
}

func principal(c echo.Context) Principal {
	p, _ := c.Get(principalKey).(Principal)
	return p
}

// authFailure is a 401, 403 or 504 from the auth layer. Besides the dialect's body it
// carries the RFC 6750 / RFC 9470 WWW-Authenticate challenge.
type authFailure struct {
	code   string
	maxAge time.Duration
	cause  error
}

func (f *authFailure) Error() string { return f.code + ": " + f.cause.Error() }
func (f *authFailure) Unwrap() error { return &mfa.Error{Code: f.code} }

// challenge is the WWW-Authenticate value, or "" when none belongs on the answer.
func (f *authFailure) challenge() string {
	switch f.code {
	case mfa.CodeUnauthorized:
		if errors.Is(f.cause, errNoToken) {
			// RFC 6750 §3.1: no error code when the request had no credentials, but
			// API.md asks for invalid_token on every 401; clients look for it.
			return `Bearer realm="mfad", error="invalid_token", error_description="missing bearer token"`
		}
		return `Bearer realm="mfad", error="invalid_token", error_description="the access token is invalid or expired"`
	case mfa.CodeForbidden:
		return `Bearer realm="mfad", error="insufficient_scope", scope="` + AdminScope + `"`
	case mfa.CodeStepUpRequired:
		return fmt.Sprintf(`Bearer realm="mfad", error="insufficient_user_authentication", error_description="a more recent authentication is required", max_age=%d`,
			int(f.maxAge/time.Second))
	}
	return ""
}
