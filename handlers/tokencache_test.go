package handlers

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestTokenCache(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newTokenCache(func() time.Time { return now })
	alice := Principal{Subject: "alice"}
	c.put("t1", alice, now.Add(30*time.Second), 7)
	if p, ok := c.get("t1", 7); !ok || p.Subject != "alice" {
		t.Fatalf("a token just verified: %+v %v", p, ok)
	}
	if _, ok := c.get("t1", 8); ok {
		t.Fatal("a token verified under an older key set was taken")
	}
	if _, ok := c.get("t2", 7); ok {
		t.Fatal("an unknown token was taken")
	}
	now = now.Add(30*time.Second + Leeway)
	if _, ok := c.get("t1", 7); ok {
		t.Fatal("an expired token was taken")
	}
	c.put("t3", alice, now.Add(time.Hour), 7)
	now = now.Add(tokenCacheTTL)
	if _, ok := c.get("t3", 7); ok {
		t.Fatal("an entry outlived the cache's TTL")
	}
	// Far more tokens than a generation holds: the cache stays bounded, a token in
	// use stays in it, and one not seen for two generations is gone.
	c.put("in use", alice, now.Add(time.Hour), 7)
	c.put("forgotten", alice, now.Add(time.Hour), 7)
	for i := range 3 * tokenCacheSize {
		c.put(fmt.Sprint("x", i), alice, now.Add(time.Hour), 7)
		if i%1000 == 0 {
			if _, ok := c.get("in use", 7); !ok {
				t.Fatalf("a token in use was dropped after %d others", i)
			}
		}
		if n := len(c.current) + len(c.previous); n > 2*tokenCacheSize {
			t.Fatalf("%d entries, more than two generations of %d", n, tokenCacheSize)
		}
	}
	if _, ok := c.get("forgotten", 7); ok {
		t.Fatal("a token unused for three generations' worth of others is still cached")
	}
	if _, ok := c.get(fmt.Sprint("x", 3*tokenCacheSize-1), 7); !ok {
		t.Fatal("the newest token is not cached")
	}
}

// BenchmarkAuthenticate is one token's check: "first" verifies a new token each time
// (what every request paid before the cache), "again" the same token, as a client
// sends it with each request.
func BenchmarkAuthenticate(b *testing.B) {
	secret := []byte("benchmark-secret-of-at-least-32-bytes!!")
	a, err := NewAuthenticator(AuthConfig{HMACSecret: secret})
	if err != nil {
		b.Fatal(err)
	}
	token := func(i int) string {
		now := time.Now()
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "iat": now.Unix(),
			"exp": now.Add(time.Hour).Unix(), "jti": fmt.Sprint(i)}).SignedString(secret)
		if err != nil {
			b.Fatal(err)
		}
		return tok
	}
	b.Run("first", func(b *testing.B) {
		toks := make([]string, 1000)
		for i := range toks {
			toks[i] = token(i)
		}
		i := 0
		for b.Loop() {
			a.verified = newTokenCache(time.Now) // nothing remembered
			if _, err := a.Authenticate(context.Background(), toks[i%len(toks)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("again", func(b *testing.B) {
		tok := token(0)
		for b.Loop() {
			if _, err := a.Authenticate(context.Background(), tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
