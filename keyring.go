package mfa

import (
	"crypto/hmac"
	"crypto/sha256"
	"slices"
)

// KeyRing holds the configured keys of one use (sealing secrets, linking the audit
// chain) by key id, in the order they were configured. The first is the primary: it
// seals or links whatever is new, while every key still opens or verifies what it made,
// so a key rotates by being put first and retires once nothing names it.
type KeyRing[T any] struct {
	ids  []string // configured order, the primary first
	byID map[string]T
}

// Add keeps k under id. The first key added is the primary; a key added twice keeps
// its first place.
func (r *KeyRing[T]) Add(id string, k T) {
	if r.byID == nil {
		r.byID = map[string]T{}
	}
	if _, dup := r.byID[id]; !dup {
		r.ids = append(r.ids, id)
	}
	r.byID[id] = k
}

// PrimaryID is the id of the primary key, "" for an empty ring.
func (r *KeyRing[T]) PrimaryID() string {
	if len(r.ids) == 0 {
		return ""
	}
	return r.ids[0]
}

// Primary is the primary key.
func (r *KeyRing[T]) Primary() T { return r.byID[r.PrimaryID()] }

// Get is the key with id, if it is configured.
func (r *KeyRing[T]) Get(id string) (T, bool) {
	k, ok := r.byID[id]
	return k, ok
}

// IDs are the configured key ids, the primary first, then in configured order.
func (r *KeyRing[T]) IDs() []string { return slices.Clone(r.ids) }

// DeriveKey is HMAC-SHA-256 of label under key: independent keys for separate uses of
// one configured secret (a key id, a hash key, a chain key).
func DeriveKey(key []byte, label string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	return m.Sum(nil)
}
