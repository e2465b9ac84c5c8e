package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// introspector asks the authorization server whether a token is active (RFC 7662).
type introspector struct {
	cfg AuthConfig
}

type introspection struct {
	Active   bool            `json:"active"`
	Subject  string          `json:"sub"`
	Scope    string          `json:"scope"`
	Issuer   string          `json:"iss"`
	Audience json.RawMessage `json:"aud"`
	Expiry   int64           `json:"exp"`
	AuthTime int64           `json:"auth_time"`
}

func (in *introspector) check(ctx context.Context, token string) (Principal, error) {
	ctx, cancel := context.WithTimeout(ctx, in.cfg.IntrospectionTimeout)
	defer cancel()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.cfg.IntrospectionURL, strings.NewReader(form.Encode()))
	if err != nil {
		return Principal{}, fmt.Errorf("introspection request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if in.cfg.IntrospectionID != "" {
		req.SetBasicAuth(url.QueryEscape(in.cfg.IntrospectionID), url.QueryEscape(in.cfg.IntrospectionSecret))
	}
	resp, err := in.cfg.HTTPClient.Do(req)
	if err != nil {
		return Principal{}, fmt.Errorf("introspect token: %v: %w", err, errAuthUnavailable)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// RFC 7662 answers 200 {"active":false} for a bad token; anything else means the
		// server refused or failed us (wrong client credentials, an outage), which is
		// not the caller's fault: the same 504 as an unreachable server.
		return Principal{}, fmt.Errorf("introspect token: status %d: %w", resp.StatusCode, errAuthUnavailable)
	}
	var r introspection
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&r); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return Principal{}, fmt.Errorf("introspect token: %v: %w", err, errAuthUnavailable)
		}
		return Principal{}, fmt.Errorf("decode introspection: %w", err)
	}
	now := in.cfg.Now()
	switch {
	case !r.Active:
		return Principal{}, errInactive
	case r.Expiry != 0 && now.After(time.Unix(r.Expiry, 0).Add(Leeway)):
		return Principal{}, errIntrospectExpired
	case in.cfg.Issuer != "" && r.Issuer != in.cfg.Issuer:
		return Principal{}, errIntrospectIssuer
	case in.cfg.Audience != "" && !hasAudience(r.Audience, in.cfg.Audience):
		return Principal{}, errIntrospectAudience
	}
	p := Principal{Subject: r.Subject, Scopes: splitScope(r.Scope)}
	if r.AuthTime != 0 {
		p.AuthTime = time.Unix(r.AuthTime, 0)
	}
	return p, checkSubject(p.Subject)
}

// What the introspection answer refused the token for.
var (
	errIntrospectExpired  = errors.New("token expired")
	errIntrospectIssuer   = errors.New("token issuer mismatch")
	errIntrospectAudience = errors.New("token audience mismatch")
)

// hasAudience reads aud as RFC 7519 allows: one string or an array of them.
func hasAudience(raw json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == want
	}
	var many []string
	return json.Unmarshal(raw, &many) == nil && slices.Contains(many, want)
}
