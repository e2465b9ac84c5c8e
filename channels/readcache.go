package channels

import (
	"bytes"
	"hash/maphash"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
)

// readCache keeps the encoded answers of a user's cacheable reads (status, the device
// and passkey lists, the backup-code count) until a write command of that user commits.
// A status read otherwise pays three statements on the read pool for an answer that
// changes only when the user writes.
//
// It is exact only because every write of the store goes through this worker's
// batchers: a worker may keep one only when it is its store's one writer (SQLite,
// behind the data dir's lock). Workers sharing PostgreSQL keep none.
//
// A batch marks its users (begin) before its transaction and ends the mark (end) after
// the commit and before its replies go out: in between, reads of those users go to the
// store and keep nothing, so neither a client that has its write's answer nor an
// event subscriber the relay has told of the commit reads the state from before it. A
// read that missed before a write began and finishes after it keeps nothing either:
// every end of a user's write moves the user's generation past the miss's ticket.
type readCache struct {
	seed   maphash.Seed
	limit  int // bytes of answers per shard
	shards [readCacheShards]readShard

	hits, misses prometheus.Counter // nil without metrics
}

const readCacheShards = 64

// answerOverhead is what a kept answer costs besides its bytes: the map entry, the
// user id's header, the slice headers. An estimate, so that many tiny answers cannot
// outgrow the limit.
const answerOverhead = 96

// droppedKept bounds the users a shard remembers the last write of; past it the shard
// forgets them all and refuses every ticket handed out before (floor).
const droppedKept = 1024

type readShard struct {
	mu      sync.Mutex
	gen     uint64            // moved by every end of a write
	floor   uint64            // tickets older than this are refused
	dropped map[string]uint64 // user → gen at the end of their last write
	writing map[string]int    // users whose writes have begun and not ended
	all     int               // writes of no user under way: everyone is being written
	bytes   int
	users   map[string][]keptAnswer
}

// keptAnswer is the data of one read command's successful reply.
type keptAnswer struct {
	key  string
	data []byte
}

// readTicket is what a miss hands to the fill: the shard and its generation then.
type readTicket struct {
	shard *readShard
	gen   uint64
}

// newReadCache returns a cache of about size bytes of answers, or nil (keep nothing)
// when size is not positive.
func newReadCache(size int, reg prometheus.Registerer) *readCache {
	if size <= 0 {
		return nil
	}
	c := &readCache{seed: maphash.MakeSeed(), limit: max(size/readCacheShards, 1)}
	for i := range c.shards {
		s := &c.shards[i]
		s.users, s.dropped, s.writing = map[string][]keptAnswer{}, map[string]uint64{}, map[string]int{}
	}
	if reg != nil {
		lookups := activity.RegisterMetric(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mfad_read_cache_lookups_total",
			Help: "Cacheable reads (status, device lists, backup-code counts) by result: hit, answered from the worker's cache; miss, read from the store.",
		}, []string{"result"}))
		c.hits, c.misses = lookups.WithLabelValues("hit"), lookups.WithLabelValues("miss")
		activity.RegisterMetric(reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mfad_read_cache_bytes",
			Help: "Bytes the worker's read cache holds, as it counts them against --read-cache-mb (answers and an estimate of their overhead).",
		}, func() float64 { return float64(c.size()) }))
	}
	return c
}

// size is the bytes kept, as counted against the limit.
func (c *readCache) size() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.bytes
		s.mu.Unlock()
	}
	return n
}

func (c *readCache) shard(userID string) *readShard {
	return &c.shards[maphash.String(c.seed, userID)%readCacheShards]
}

// get returns the kept answer under key for userID; on a miss, the ticket to keep the
// answer about to be read.
func (c *readCache) get(userID, key string) ([]byte, bool, readTicket) {
	s := c.shard(userID)
	s.mu.Lock()
	if s.all == 0 && s.writing[userID] == 0 {
		for _, a := range s.users[userID] {
			if a.key == key {
				s.mu.Unlock()
				if c.hits != nil {
					c.hits.Inc()
				}
				return a.data, true, readTicket{}
			}
		}
	}
	t := readTicket{shard: s, gen: s.gen}
	s.mu.Unlock()
	if c.misses != nil {
		c.misses.Inc()
	}
	return nil, false, t
}

// put keeps a copy of data as the answer under key for userID, unless a write of the
// user is under way or has ended since t was handed out.
func (c *readCache) put(t readTicket, userID, key string, data []byte) {
	s := t.shard
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.gen < s.floor || s.dropped[userID] > t.gen || s.writing[userID] > 0 || s.all > 0 {
		return
	}
	for _, a := range s.users[userID] {
		if a.key == key {
			return // another read of the same state kept it first
		}
	}
	size := answerSize(userID, data)
	// Make room by dropping other users, whichever the map's order names first.
	for u, answers := range s.users {
		if s.bytes+size <= c.limit {
			break
		}
		s.drop(u, answers)
	}
	if s.bytes+size > c.limit {
		return // one answer larger than the shard
	}
	// A copy of its own: the reply's buffer may be larger than its bytes, and is not
	// the cache's to keep.
	s.users[userID] = append(s.users[userID], keptAnswer{key: key, data: bytes.Clone(data)})
	s.bytes += size
}

// begin marks a write of userID (of everyone for "": a write of no user) as under way,
// until end.
func (c *readCache) begin(userID string) {
	if userID == "" {
		for i := range c.shards {
			s := &c.shards[i]
			s.mu.Lock()
			s.all++
			s.mu.Unlock()
		}
		return
	}
	s := c.shard(userID)
	s.mu.Lock()
	s.writing[userID]++
	s.mu.Unlock()
}

// end ends a write begun with begin, once it has committed (or failed): what is kept
// for userID (for everyone, for "") goes, and so does any fill of a read that missed
// before.
func (c *readCache) end(userID string) {
	if userID == "" {
		for i := range c.shards {
			s := &c.shards[i]
			s.mu.Lock()
			s.all--
			s.gen++
			s.floor = s.gen
			clear(s.users)
			clear(s.dropped)
			s.bytes = 0
			s.mu.Unlock()
		}
		return
	}
	s := c.shard(userID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writing[userID]--; s.writing[userID] <= 0 {
		delete(s.writing, userID)
	}
	s.gen++
	if len(s.dropped) >= droppedKept {
		clear(s.dropped)
		s.floor = s.gen
	}
	s.dropped[userID] = s.gen
	if answers, ok := s.users[userID]; ok {
		s.drop(userID, answers)
	}
}

func (s *readShard) drop(userID string, answers []keptAnswer) {
	for _, a := range answers {
		s.bytes -= answerSize(userID, a.data)
	}
	delete(s.users, userID)
}

func answerSize(userID string, data []byte) int {
	return len(userID) + len(data) + answerOverhead
}

// cacheable says whether a read's result may be kept until its user's next write:
// only a status without a lock, whose end would change the answer without a write.
func cacheable(data any) bool {
	if st, ok := data.(mfa.Status); ok {
		return st.LockedUntil == nil
	}
	return true
}
