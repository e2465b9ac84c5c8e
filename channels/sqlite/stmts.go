package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache keeps each distinct query prepared on its pool. Preparing (SQLite's parse
// and plan) cost more than running most of our statements: a third of the writer's time
// in a profile of the verify load.
//
// Statements are prepared between transactions, never inside one: the writer pool has a
// single connection, and preparing on the pool while our transaction holds it would wait
// for ever. A query first seen inside a transaction runs unprepared once and is prepared
// when the transaction is over.
type stmtCache struct {
	db      *sql.DB
	mu      sync.RWMutex
	m       map[string]*sql.Stmt
	missing map[string]bool
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}, missing: map[string]bool{}}
}

// lookup returns the prepared statement of query, or nil after noting it for later.
func (c *stmtCache) lookup(query string) *sql.Stmt {
	c.mu.RLock()
	st := c.m[query]
	c.mu.RUnlock()
	if st == nil {
		c.mu.Lock()
		c.missing[query] = true
		c.mu.Unlock()
	}
	return st
}

// prepareMissing prepares the queries seen since the last call. The caller must not be
// holding a transaction of this pool. A query that does not prepare (a write on the
// read-only pool) is left to run unprepared.
func (c *stmtCache) prepareMissing(ctx context.Context) {
	c.mu.Lock()
	if len(c.missing) == 0 {
		c.mu.Unlock()
		return
	}
	todo := make([]string, 0, len(c.missing))
	for q := range c.missing {
		todo = append(todo, q)
	}
	clear(c.missing)
	c.mu.Unlock()
	// Preparing needs a connection of the pool. It must not happen under mu: the
	// transactions holding the other connections look statements up under mu, and
	// would never give theirs back.
	for _, q := range todo {
		st, err := c.db.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		c.mu.Lock()
		if _, dup := c.m[q]; dup {
			st.Close() // another goroutine prepared it meanwhile
		} else {
			c.m[q] = st
		}
		c.mu.Unlock()
	}
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.m {
		st.Close()
		delete(c.m, q)
	}
}
