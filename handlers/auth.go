package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

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
}

// Authentication failures. errAuthUnavailable is the introspection server not
// answering: 504, as DruID documents.
var (
	errNoToken         = errors.New("no bearer token")
	errAuthUnavailable = errors.New("authorization server unreachable")
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
		*s = strings.Fields(str)
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("scope is neither a string nor an array of strings")
	}
	*s = list
	return nil
}

// Authenticate validates a bearer token and returns the caller.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (Principal, error) {
	if a.introspect != nil {
		return a.introspect.check(ctx, token)
	}
	var cl claims
	_, err := a.parser.ParseWithClaims(token, &cl, func(t *jwt.Token) (any, error) {
		if _, ok := t.Method.(*jwt.SigningMethodHMAC); ok {
			return a.cfg.HMACSecret, nil
		}
		if a.jwks == nil {
			return nil, errors.New("no JWKS configured")
		}
		kid, _ := t.Header["kid"].(string)
		return a.jwks.key(ctx, kid, t.Method.Alg())
	})
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
	return p, checkSubject(p.Subject)
}

func checkSubject(sub string) error {
	if n := len(sub); n == 0 || n > 128 {
		return fmt.Errorf("invalid token: sub must be 1 to 128 characters, got %d", n)
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
			return &authFailure{code: mfa.CodeForbidden, cause: errors.New("admin scope required")}
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
				return &authFailure{code: mfa.CodeStepUpRequired, maxAge: maxAge,
					cause: errors.New("authentication is older than the step-up maximum age")}
			}
			return next(c)
		}
	}
}

const principalKey = "mfad.principal"

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
