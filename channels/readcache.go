package channels

import (
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
// Forgetting happens after a batch commits and before its replies go out, so a client
// that has its write's answer never reads the state from before it. A read that
// started before the commit may finish after it with the old state: every shard has a
// generation, moved by every forget, and an answer is kept only if its shard's
// generation is the one seen when the read missed.
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

type readShard struct {
	mu    sync.Mutex
	gen   uint64
	bytes int
	users map[string][]keptAnswer
}

// keptAnswer is the data of one read command's successful reply.
type keptAnswer struct {
	typ  string
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
		c.shards[i].users = map[string][]keptAnswer{}
	}
	if reg != nil {
		lookups := activity.RegisterMetric(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mfad_read_cache_lookups_total",
			Help: "Cacheable reads (status, device lists, backup-code counts) by result: hit, answered from the worker's cache; miss, read from the store.",
		}, []string{"result"}))
		c.hits, c.misses = lookups.WithLabelValues("hit"), lookups.WithLabelValues("miss")
	}
	return c
}

func (c *readCache) shard(userID string) *readShard {
	return &c.shards[maphash.String(c.seed, userID)%readCacheShards]
}

// get returns the kept answer of typ for userID; on a miss, the ticket to keep the
// answer about to be read.
func (c *readCache) get(userID, typ string) ([]byte, bool, readTicket) {
	s := c.shard(userID)
	s.mu.Lock()
	for _, a := range s.users[userID] {
		if a.typ == typ {
			s.mu.Unlock()
			if c.hits != nil {
				c.hits.Inc()
			}
			return a.data, true, readTicket{}
		}
	}
	t := readTicket{shard: s, gen: s.gen}
	s.mu.Unlock()
	if c.misses != nil {
		c.misses.Inc()
	}
	return nil, false, t
}

// put keeps data as the answer of typ for userID, unless a write of the shard has
// committed since t was handed out. data must not change afterwards.
func (c *readCache) put(t readTicket, userID, typ string, data []byte) {
	s := t.shard
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != t.gen {
		return
	}
	for _, a := range s.users[userID] {
		if a.typ == typ {
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
	s.users[userID] = append(s.users[userID], keptAnswer{typ: typ, data: data})
	s.bytes += size
}

// forget drops what is kept for userID, or for everyone when userID is "" (a write of
// no user, such as the sweep, may touch anyone's rows).
func (c *readCache) forget(userID string) {
	if userID == "" {
		for i := range c.shards {
			s := &c.shards[i]
			s.mu.Lock()
			s.gen++
			clear(s.users)
			s.bytes = 0
			s.mu.Unlock()
		}
		return
	}
	s := c.shard(userID)
	s.mu.Lock()
	s.gen++
	if answers, ok := s.users[userID]; ok {
		s.drop(userID, answers)
	}
	s.mu.Unlock()
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
