package handlers

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sync"
	"time"
)

const (
	jwksTTL        = 10 * time.Minute // keys are refetched at least this often
	jwksMinRefetch = time.Second      // an unknown kid refetches at most this often
	jwksTimeout    = 5 * time.Second
	jwksMaxBody    = 1 << 20
)

// jwks is a cached JSON Web Key Set (RFC 7517). An unknown kid triggers a refetch, rate
// limited so that tokens with made-up kids cannot hammer the key server. The network
// call runs outside the state lock: while the set is fresh, tokens with known keys never
// wait for a slow key server. Once it is stale, it is fetched again before use, so a key
// removed from the set stops working within jwksTTL; if the server cannot be reached
// then, the cached set keeps serving.
type jwks struct {
	url    string
	client *http.Client
	now    func() time.Time

	fetching sync.Mutex // one fetch at a time; held without mu during the network call

	mu          sync.Mutex
	keys        map[string]any // kid → *rsa.PublicKey | *ecdsa.PublicKey | ed25519.PublicKey
	fetchedAt   time.Time
	attemptedAt time.Time
	generation  uint64 // counts the sets fetched: a cached verification of an older set is void
}

// current is the generation of the key set in use.
func (j *jwks) current() uint64 {
	if j == nil {
		return 0
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.generation
}

func newJWKS(url string, client *http.Client, now func() time.Time) *jwks {
	return &jwks{url: url, client: client, now: now}
}

// key returns the verification key for kid, suitable for alg.
func (j *jwks) key(ctx context.Context, kid, alg string) (any, error) {
	j.mu.Lock()
	_, ok := j.lookup(kid)
	stale := j.now().Sub(j.fetchedAt) > jwksTTL
	j.mu.Unlock()
	switch {
	case !ok:
		// A kid we have never seen: only the key server can say, so wait for it.
		j.fetching.Lock()
		err := j.refreshLocked(ctx)
		j.fetching.Unlock()
		if err != nil {
			return nil, err
		}
	case stale && j.fetching.TryLock():
		// The first request after expiry fetches the set again, so a key removed from
		// it stops working; requests meanwhile use the cached set rather than queue
		// behind the fetch. A failed fetch keeps the cached set serving.
		_ = j.refreshLocked(ctx)
		j.fetching.Unlock()
	}
	j.mu.Lock()
	k, ok := j.lookup(kid)
	j.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w %q in the JWKS", errUnknownKey, kid)
	}
	if !suits(k, alg) {
		return nil, fmt.Errorf("key %q does not suit alg %s", kid, alg)
	}
	return k, nil
}

// refreshLocked fetches the set, unless the last attempt ended less than
// jwksMinRefetch ago: requests that waited for one fetch do not each start another. The
// caller holds j.fetching.
func (j *jwks) refreshLocked(ctx context.Context) error {
	j.mu.Lock()
	recent := j.now().Sub(j.attemptedAt) < jwksMinRefetch
	j.mu.Unlock()
	if recent {
		return nil
	}
	keys, err := j.fetch(ctx)
	j.mu.Lock()
	defer j.mu.Unlock()
	now := j.now()
	j.attemptedAt = now
	if err != nil {
		return err
	}
	j.keys, j.fetchedAt = keys, now
	j.generation++
	return nil
}

// lookup finds kid; a token without kid may use the set's only key.
func (j *jwks) lookup(kid string) (any, bool) {
	if kid == "" && len(j.keys) == 1 {
		for _, k := range j.keys {
			return k, true
		}
	}
	k, ok := j.keys[kid]
	return k, ok
}

func suits(key any, alg string) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return alg == "RS256"
	case *ecdsa.PublicKey:
		return alg == "ES256" && k.Curve == elliptic.P256()
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

func (j *jwks) fetch(ctx context.Context) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, jwksTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %v: %w", err, errAuthUnavailable)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS: status %d: %w", resp.StatusCode, errAuthUnavailable)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, jwksMaxBody)).Decode(&set); err != nil {
		return nil, fmt.Errorf("decode JWKS: %w", err)
	}
	keys := make(map[string]any, len(set.Keys))
	for _, raw := range set.Keys {
		kid, key, err := parseJWK(raw)
		if err != nil {
			continue // one key we cannot use does not spoil the others
		}
		keys[kid] = key
	}
	return keys, nil
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

func parseJWK(raw json.RawMessage) (string, any, error) {
	var k jwk
	if err := json.Unmarshal(raw, &k); err != nil {
		return "", nil, err
	}
	if k.Use != "" && k.Use != "sig" {
		return "", nil, errors.New("not a signing key")
	}
	b64 := base64.RawURLEncoding.DecodeString
	switch k.Kty {
	case "RSA":
		n, err1 := b64(k.N)
		e, err2 := b64(k.E)
		if err := errors.Join(err1, err2); err != nil {
			return "", nil, err
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < 2048 || pub.E < 3 {
			return "", nil, errors.New("weak RSA key")
		}
		return k.Kid, pub, nil
	case "EC":
		if k.Crv != "P-256" {
			return "", nil, errors.New("unsupported curve")
		}
		x, err1 := b64(k.X)
		y, err2 := b64(k.Y)
		if err := errors.Join(err1, err2); err != nil || len(x) != 32 || len(y) != 32 {
			return "", nil, errors.New("bad EC coordinates")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return "", nil, err
		}
		return k.Kid, pub, nil
	case "OKP":
		x, err := b64(k.X)
		if k.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
			return "", nil, errors.New("bad Ed25519 key")
		}
		return k.Kid, ed25519.PublicKey(x), nil
	}
	return "", nil, errors.New("unsupported key type")
}
