package channels

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// TestUsableKey: the keys real authenticators make are accepted (ES256/384/512, RS256
// up to 4096 bits, PS256, EdDSA), and keys that could never verify are refused.
func TestUsableKey(t *testing.T) {
	cose := func(m map[int]any) []byte {
		b, err := webauthncbor.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ec := func(alg, crv int, c elliptic.Curve) []byte {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		n := (c.Params().BitSize + 7) / 8
		return cose(map[int]any{1: 2, 3: alg, -1: crv, -2: k.X.FillBytes(make([]byte, n)), -3: k.Y.FillBytes(make([]byte, n))})
	}
	rs := func(alg, bits int, e []byte) []byte {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		return cose(map[int]any{1: 3, 3: alg, -1: k.N.Bytes(), -2: e})
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	f4 := []byte{1, 0, 1}
	for name, k := range map[string][]byte{
		"ES256": ec(-7, 1, elliptic.P256()), "ES384": ec(-35, 2, elliptic.P384()), "ES512": ec(-36, 3, elliptic.P521()),
		"RS256 2048": rs(-257, 2048, f4), "RS256 3072": rs(-257, 3072, f4), "RS256 4096": rs(-257, 4096, f4),
		"PS256 2048": rs(-37, 2048, f4), "EdDSA": cose(map[int]any{1: 1, 3: -8, -1: 6, -2: []byte(pub)}),
	} {
		if err := usableKey(k); err != nil {
			t.Errorf("%s refused: %v", name, err)
		}
	}
	for name, k := range map[string][]byte{
		"RS256 1024":            rs(-257, 1024, f4),
		"RSA key for ES256":     rs(-7, 2048, f4),
		"RSA exponent 1":        rs(-257, 2048, []byte{1}),
		"RSA exponent 65536":    rs(-257, 2048, []byte{1, 0, 0}),
		"ES256 on P-384":        ec(-7, 2, elliptic.P384()),
		"ES384 on P-521":        ec(-35, 3, elliptic.P521()),
		"Ed25519 of 31 bytes":   cose(map[int]any{1: 1, 3: -8, -1: 6, -2: []byte(pub[:31])}),
		"ES256 point off curve": cose(map[int]any{1: 2, 3: -7, -1: 1, -2: make([]byte, 32), -3: append(make([]byte, 31), 1)}),
	} {
		if err := usableKey(k); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}
