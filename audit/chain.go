package audit

import (
	"crypto/sha256"
	"encoding/binary"
)

// genesis is the prev_hash of the first record.
var genesis = make([]byte, sha256.Size)

// record is one audit_log row.
type record struct {
	Seq         int64
	EventID     string
	Type        string
	UserID      string
	Actor       string
	EntryPoint  string
	Source      string
	Body        string
	PrevHash    []byte
	Hash        []byte
	CreatedAt   int64 // Unix ms
	PublishedAt *int64
}

// chainHash is SHA-256(prev_hash || canonical record). The canonical form covers every
// column except hash itself and published_at (the one column the relay may set later):
// integers as 8 bytes big-endian, strings length-prefixed, so no two different records
// share an encoding.
func chainHash(r *record) []byte {
	h := sha256.New()
	h.Write(r.PrevHash)
	var n [8]byte
	putInt := func(v int64) {
		binary.BigEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	putString := func(s string) {
		putInt(int64(len(s)))
		h.Write([]byte(s))
	}
	putInt(r.Seq)
	putString(r.EventID)
	putString(r.Type)
	putString(r.UserID)
	putString(r.Actor)
	putString(r.EntryPoint)
	putString(r.Source)
	putString(r.Body)
	putInt(r.CreatedAt)
	return h.Sum(nil)
}
