package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sync"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
)

// Genesis is the prev_hash of the first record.
var Genesis = make([]byte, sha256.Size)

// Record is one audit_log row.
type Record struct {
	Seq        int64
	EventID    string
	Type       string
	UserID     string
	Actor      string
	EntryPoint string
	Source     string
	Body       string // the event as published: Activity Streams 2.0 JSON
	KeyID      string // the chain key that linked it; "" for an unkeyed record of schema 1
	PrevHash   []byte
	Hash       []byte
	CreatedAt  int64 // Unix ms
	Published  bool
}

// KeySize is the size of a chain key.
const KeySize = 32

// Chain links audit records: each record's hash is an HMAC-SHA-256, under a key kept
// outside the database, of the previous record's hash and every column of the record
// but published_at (the relay's mark, set after the record is linked).
// Whoever holds the database but not the key can neither alter a record nor rewrite
// the chain after it so that it verifies again, which a plain hash chain allowed.
//
// Keys rotate like the sealing keys: the first one links new records, every
// configured one verifies, and each record names its key. Records of schema 1 were
// chained with plain SHA-256 and name no key; they stay verifiable (Verify).
type Chain struct {
	keys    mfa.KeyRing[[]byte]
	linkers sync.Pool // *linker under the primary key
}

// ErrUnknownChainKey means a record names a chain key that is not configured.
var ErrUnknownChainKey = errors.New("linked with a chain key that is not configured")

// NewChain returns a chain whose first key links new records.
func NewChain(keys ...[]byte) (*Chain, error) {
	if len(keys) == 0 {
		return nil, errors.New("no audit chain key")
	}
	c := &Chain{}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("audit chain key %d is %d bytes, want %d", i+1, len(k), KeySize)
		}
		c.keys.Add(ChainKeyID(k), mfa.DeriveKey(k, "mfad audit chain v2"))
	}
	primary := c.keys.Primary()
	c.linkers.New = func() any { return &linker{mac: hmac.New(sha256.New, primary)} }
	return c, nil
}

// ChainKeyID names a chain key without revealing it.
func ChainKeyID(key []byte) string {
	return hex.EncodeToString(mfa.DeriveKey(key, "mfad audit chain key id")[:8])
}

// PrimaryKeyID is the id of the key that links new records.
func (c *Chain) PrimaryKeyID() string { return c.keys.PrimaryID() }

// KeyIDs are the configured key ids, primary first.
func (c *Chain) KeyIDs() []string { return c.keys.IDs() }

// Next is the record of ev at seq, linked after the record whose hash is prev. The body
// is the event as it is published, carrying seq.
func (c *Chain) Next(ev mfa.Event, seq int64, prev []byte) (Record, error) {
	body, err := activity.EncodeEvent(ev, seq)
	if err != nil {
		return Record{}, err
	}
	r := Record{
		Seq:        seq,
		EventID:    ev.ID,
		Type:       ev.Type,
		UserID:     ev.UserID,
		Actor:      ev.Actor,
		EntryPoint: ev.EntryPoint,
		Source:     ev.Source,
		Body:       string(body),
		KeyID:      c.keys.PrimaryID(),
		PrevHash:   prev,
		CreatedAt:  ev.Time.UnixMilli(),
	}
	r.Hash = c.hash(&r, c.keys.Primary())
	return r, nil
}

// Matches reports whether r's columns hash to r.Hash under the key it names (or, for
// a record with no key, under plain SHA-256).
func (c *Chain) Matches(r *Record) (bool, error) {
	if r.KeyID == "" {
		return hmac.Equal(c.hash(r, nil), r.Hash), nil
	}
	key, ok := c.keys.Get(r.KeyID)
	if !ok {
		return false, fmt.Errorf("audit record %d: key id %s: %w", r.Seq, r.KeyID, ErrUnknownChainKey)
	}
	return hmac.Equal(c.hash(r, key), r.Hash), nil
}

// hash is the link of r: HMAC-SHA-256 under key of prev_hash and the canonical record,
// which covers every column except hash itself and published_at (the one column the
// relay may set later): integers as 8 bytes big-endian, strings length-prefixed, so no
// two different records share an encoding. The key id is covered too, so a record
// cannot be relabelled with another key. With no key (schema 1) it is SHA-256 of the
// same input without the key id.
func (c *Chain) hash(r *Record, key []byte) []byte {
	if key == nil {
		sum := sha256.Sum256(appendLinkInput(nil, r, false))
		return sum[:]
	}
	if !bytes.Equal(key, c.keys.Primary()) {
		h := hmac.New(sha256.New, key)
		h.Write(appendLinkInput(nil, r, true))
		return h.Sum(nil)
	}
	// Every new record is linked under the primary key: its HMAC and input buffer are
	// reused (a new HMAC and a copy of each column per record were a tenth of the
	// allocations of a request that writes seven records).
	l := c.linkers.Get().(*linker)
	defer c.linkers.Put(l)
	l.buf = appendLinkInput(l.buf[:0], r, true)
	l.mac.Reset()
	l.mac.Write(l.buf)
	return l.mac.Sum(make([]byte, 0, sha256.Size))
}

// linker is a reusable HMAC under the primary key and the buffer of its input.
type linker struct {
	mac hash.Hash
	buf []byte
}

// appendLinkInput appends what a record's hash covers to b: the previous hash, then
// the columns, each string preceded by its length (8 bytes, big-endian, as the
// integers) so that no two records share an input; the key id last, when keyed.
func appendLinkInput(b []byte, r *Record, keyed bool) []byte {
	b = append(b, r.PrevHash...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Seq))
	for _, s := range [...]string{r.EventID, r.Type, r.UserID, r.Actor, r.EntryPoint, r.Source, r.Body} {
		b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(r.CreatedAt))
	if keyed {
		b = binary.BigEndian.AppendUint64(b, uint64(len(r.KeyID)))
		b = append(b, r.KeyID...)
	}
	return b
}

// Seal is a keyed tag of a fact about the log itself (where the keyed chain begins),
// so that the fact cannot be changed by whoever holds only the database.
func (c *Chain) Seal(fact string) []byte {
	return append([]byte(c.keys.PrimaryID()+":"), factTag(c.keys.Primary(), fact)...)
}

// Opens reports whether tag is Seal(fact) under one of the configured keys.
func (c *Chain) Opens(fact string, tag []byte) bool {
	id, sum, ok := bytes.Cut(tag, []byte(":"))
	if !ok {
		return false
	}
	key, known := c.keys.Get(string(id))
	return known && hmac.Equal(factTag(key, fact), sum)
}

func factTag(key []byte, fact string) []byte { return mfa.DeriveKey(key, "mfad audit fact\x00"+fact) }

// TagKeyID is the key id of a tag made by Seal.
func TagKeyID(tag []byte) string {
	id, _, ok := bytes.Cut(tag, []byte(":"))
	if !ok {
		return ""
	}
	return string(id)
}
