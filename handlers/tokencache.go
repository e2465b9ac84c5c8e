package handlers

import (
	"sync"
	"time"
)

// tokenCache remembers tokens already verified, so that a client sending the same
// token with every request pays for the signature check once: an ES256 or RS256
// verification costs tens of microseconds, more than the rest of a status request's
// HTTP side (BenchmarkAuthenticate). An entry is the Principal a token proved, kept
// until the token expires and only while the JWKS is the set it was verified with:
// once a new set is fetched (a key removed, say) every token is checked again. Entries
// live at most tokenCacheTTL. Introspected tokens are never cached: the authorization
// server may revoke them at any moment.
//
// It holds two generations of at most tokenCacheSize entries each. When the current
// one is full it becomes the previous one and the older is dropped; a token found in
// the previous generation moves to the current one. Tokens in use therefore stay,
// however many others come and go: with one map cleared when full, a site with more
// distinct tokens a minute than it held verified nearly every token again (20,000
// users against 16,384 entries: 7 % of a removal's CPU, BENCHMARKS.md).
type tokenCache struct {
	mu       sync.RWMutex
	current  map[string]cachedToken
	previous map[string]cachedToken
	now      func() time.Time
}

type cachedToken struct {
	p     Principal
	until time.Time
	keys  uint64 // the JWKS generation it was verified with
}

const (
	tokenCacheTTL = time.Minute
	// tokenCacheSize is one generation: tokens of a few hundred bytes, so the two hold
	// under 20 MB at most.
	tokenCacheSize = 16384
)

func newTokenCache(now func() time.Time) *tokenCache {
	return &tokenCache{current: make(map[string]cachedToken), now: now}
}

// get is the Principal token proved, if it is cached and still good under the key set
// of generation keys.
func (c *tokenCache) get(token string, keys uint64) (Principal, bool) {
	c.mu.RLock()
	e, ok := c.current[token]
	c.mu.RUnlock()
	if !ok {
		c.mu.Lock()
		if e, ok = c.current[token]; !ok { // another request may have moved it
			if e, ok = c.previous[token]; ok {
				delete(c.previous, token)
				c.add(token, e)
			}
		}
		c.mu.Unlock()
	}
	if !ok || e.keys != keys || !c.now().Before(e.until) {
		return Principal{}, false
	}
	return e.p, true
}

// put remembers that token proved p, under the key set of generation keys, until it
// expires at exp (plus the leeway the verification allowed), at most tokenCacheTTL
// from now.
func (c *tokenCache) put(token string, p Principal, exp time.Time, keys uint64) {
	until := c.now().Add(tokenCacheTTL)
	if end := exp.Add(Leeway); end.Before(until) {
		until = end
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.previous, token)
	c.add(token, cachedToken{p: p, until: until, keys: keys})
}

// add puts an entry into the current generation, starting a new one when it is full.
// c.mu is held.
func (c *tokenCache) add(token string, e cachedToken) {
	if _, ok := c.current[token]; !ok && len(c.current) >= tokenCacheSize {
		c.previous, c.current = c.current, make(map[string]cachedToken, tokenCacheSize)
	}
	c.current[token] = e
}
