package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// client talks HTTP to mfad with keep-alive connections, one per virtual user.
type client struct {
	base   string
	http   *http.Client
	secret []byte
}

func newClient(base string, conns int, secret []byte) *client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
	}
	return &client{base: strings.TrimRight(base, "/"), http: &http.Client{Transport: tr, Timeout: 30 * time.Second}, secret: secret}
}

// token mints an HS256 token for sub, as `mfad token` would.
func (c *client) token(sub string) (string, error) {
	now := time.Now()
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": sub, "iat": now.Unix(), "exp": now.Add(24 * time.Hour).Unix(), "auth_time": now.Unix(),
	}).SignedString(c.secret)
}

// result is one request's outcome.
type result struct {
	status  int // 0 = transport error
	latency time.Duration
	at      time.Time // when the answer arrived
	body    []byte
}

// do sends one request; token "" sends none.
func (c *client) do(ctx context.Context, method, path, token, body string, headers ...string) result {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return result{}
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return result{latency: time.Since(start), at: time.Now()}
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	now := time.Now()
	return result{status: resp.StatusCode, latency: now.Sub(start), at: now, body: buf.Bytes()}
}

// dataFields decodes the named members of a device-dialect answer's "data" object, each
// into its pointer, and reads the body no further than the last of them. The tool
// shares the box with mfad: decoding a setup answer whole (its QR code is kilobytes)
// took a quarter of the tool's CPU in the setup scenario, CPU that mfad then lacked.
// What follows the last member needed is not checked, and names match exactly (where
// json.Unmarshal ignores case). An answer missing a named member is an error.
func dataFields(body []byte, fields map[string]any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := seekMember(dec, "data"); err != nil {
		return err
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("data is not an object (%v, %v)", t, err)
	}
	want := maps.Clone(fields) // a name repeated in the answer counts once
	for len(want) > 0 {
		if !dec.More() {
			return fmt.Errorf("data lacks %d of %d members", len(want), len(fields))
		}
		t, err := dec.Token()
		if err != nil {
			return err
		}
		name := t.(string) // an object's keys are strings
		v, ok := fields[name]
		if !ok {
			v = new(json.RawMessage)
		}
		delete(want, name)
		if err := dec.Decode(v); err != nil {
			return fmt.Errorf("data.%s: %w", name, err)
		}
	}
	return nil
}

// seekMember reads dec up to the value of the top-level object's member name.
func seekMember(dec *json.Decoder, name string) error {
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("the answer is not a JSON object (%v)", err)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		if t == name {
			return nil
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return fmt.Errorf("the answer has no %q", name)
}

// loadSecret is --jwt-secret, else the dev secret of a local mfad's data dir.
func loadSecret(secret, dataDir string) ([]byte, error) {
	if secret != "" {
		return []byte(secret), nil
	}
	b, err := os.ReadFile(filepath.Join(dataDir, "jwt-dev.secret"))
	if err != nil {
		return nil, fmt.Errorf("no --jwt-secret and no dev secret in %s: %w", dataDir, err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, errors.New("dev secret file is not base64")
	}
	return key, nil
}
