package channels

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	mfa "github.com/mfad/mfad"
)

// KeySize is the size of a sealing key: AES-256.
const KeySize = 32

const sealVersion = 1

// ErrUnknownKey means a value was sealed with a key that is not configured: the wrong
// MFAD_SECRET_KEY, or a rotated-out key that was dropped too early. Nothing is decrypted
// with a guess; the operation fails.
var ErrUnknownKey = errors.New("sealed with a key that is not configured")

// Sealer encrypts secrets at rest with AES-256-GCM and computes keyed hashes of one-time
// codes. Every sealed value carries the id of its key, so keys can rotate: the first key
// seals, every configured key opens.
type Sealer struct {
	keys mfa.KeyRing[sealKey]
}

// sealKey is one configured key: its cipher and the key of its code hashes.
type sealKey struct {
	aead cipher.AEAD
	mac  []byte
}

// NewSealer returns a Sealer whose first key is the one used for new values.
func NewSealer(keys ...[]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("no sealing key")
	}
	s := &Sealer{}
	for i, key := range keys {
		if len(key) != KeySize {
			return nil, fmt.Errorf("sealing key %d is %d bytes, want %d", i+1, len(key), KeySize)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("sealing key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("sealing key %d: %w", i+1, err)
		}
		s.keys.Add(KeyID(key), sealKey{aead: aead, mac: mfa.DeriveKey(key, "mfad code hash v1")})
	}
	return s, nil
}

// KeyID names a key without revealing it: the first 8 bytes of a hash of it, in hex.
func KeyID(key []byte) string {
	return hex.EncodeToString(mfa.DeriveKey(key, "mfad key id v1")[:8])
}

// PrimaryKeyID is the id of the key new values are sealed with.
func (s *Sealer) PrimaryKeyID() string { return s.keys.PrimaryID() }

// KeyIDs are the ids of the configured keys, the primary first.
func (s *Sealer) KeyIDs() []string { return s.keys.IDs() }

// Seal encrypts plaintext. aad binds the value to where it is stored (for example the
// owning user), so a sealed value copied to another row does not open.
// Layout: version(1) | key id(8) | nonce(12) | ciphertext+tag.
func (s *Sealer) Seal(plaintext, aad []byte) []byte {
	aead := s.keys.Primary().aead
	id, _ := hex.DecodeString(s.keys.PrimaryID())
	out := make([]byte, 0, 1+len(id)+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out = append(out, sealVersion)
	out = append(out, id...)
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails (Go 1.24+)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, aad)
}

// Open decrypts a value made by Seal with the same aad.
func (s *Sealer) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < 1+8 || sealed[0] != sealVersion {
		return nil, errors.New("open sealed value: unknown format")
	}
	id := hex.EncodeToString(sealed[1:9])
	k, ok := s.keys.Get(id)
	if !ok {
		return nil, fmt.Errorf("open sealed value: key id %s: %w", id, ErrUnknownKey)
	}
	aead := k.aead
	rest := sealed[9:]
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("open sealed value: truncated")
	}
	plain, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], aad)
	if err != nil {
		return nil, fmt.Errorf("open sealed value with key %s: %w", id, err)
	}
	return plain, nil
}

// KeyOf returns the key id a sealed value was made with.
func KeyOf(sealed []byte) string {
	if len(sealed) < 9 {
		return ""
	}
	return hex.EncodeToString(sealed[1:9])
}

// Hash is a keyed hash (HMAC-SHA-256) of a one-time code, bound to its owner, under the
// primary key. It returns the key id to store beside the hash.
func (s *Sealer) Hash(owner, code string) (keyID string, sum []byte) {
	id := s.keys.PrimaryID()
	return id, s.hashWith(s.keys.Primary(), owner, code)
}

// Match reports, in constant time, whether code hashes to sum under keyID.
func (s *Sealer) Match(keyID, owner, code string, sum []byte) bool {
	k, ok := s.keys.Get(keyID)
	if !ok {
		return false
	}
	return hmac.Equal(s.hashWith(k, owner, code), sum)
}

func (s *Sealer) hashWith(k sealKey, owner, code string) []byte {
	m := hmac.New(sha256.New, k.mac)
	m.Write([]byte(owner))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}
