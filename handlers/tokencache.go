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
// live at most tokenCacheTTL, so the map holds about a minute's worth of tokens.
// Introspected tokens are never cached: the authorization server may revoke them at
// any moment.
type tokenCache struct {
	mu      sync.RWMutex
	entries map[string]cachedToken
	now     func() time.Time
}

type cachedToken struct {
	p     Principal
	until time.Time
	keys  uint64 // the JWKS generation it was verified with
}

const (
	tokenCacheTTL = time.Minute
	// tokenCacheSize: the distinct tokens of a minute at a busy site (a load of 10,000
	// users cleared a 4,096-entry cache every few seconds and verified most tokens again);
	// tokens of a few hundred bytes: under 10 MB at most.
	tokenCacheSize = 16384
)

func newTokenCache(now func() time.Time) *tokenCache {
	return &tokenCache{entries: make(map[string]cachedToken), now: now}
}

// get is the Principal token proved, if it is cached and still good under the key set
// of generation keys.
func (c *tokenCache) get(token string, keys uint64) (Principal, bool) {
	c.mu.RLock()
	e, ok := c.entries[token]
	c.mu.RUnlock()
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
	if len(c.entries) >= tokenCacheSize {
		// Full: start over rather than track ages. It happens when more distinct tokens
		// arrive per minute than the cache holds, and costs one verification each.
		clear(c.entries)
	}
	c.entries[token] = cachedToken{p: p, until: until, keys: keys}
}
