package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// conn is one SQLite connection that keeps every statement it runs prepared on itself:
// parsing and planning cost more than running most of our statements (a third of the
// writer's time in a profile of the verify load). Transactions are its own prepared
// BEGIN, COMMIT, SAVEPOINT… statements too, not database/sql's Tx, which ran each of
// them through sqlite3_exec, a parse every time, and wrapped every statement of a
// transaction in a new *sql.Stmt.
//
// A conn is used by one goroutine at a time (the store hands them out).
type conn struct {
	c     *sql.Conn
	stmts map[string]*sql.Stmt
}

func newConn(ctx context.Context, db *sql.DB) (*conn, error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	return &conn{c: c, stmts: map[string]*sql.Stmt{}}, nil
}

// stmt is query prepared on this connection, prepared now if it is the first use.
func (c *conn) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := c.stmts[query]; ok {
		return st, nil
	}
	st, err := c.c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = st
	return st, nil
}

func (c *conn) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (c *conn) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// queryRow is QueryRowContext: a statement that does not prepare fails at Scan.
func (c *conn) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := c.stmt(ctx, query)
	if err != nil {
		// sql.Row has no constructor for an error: run it unprepared, so that Scan
		// reports the same error.
		return c.c.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

func (c *conn) close() error {
	var err error
	for q, st := range c.stmts {
		err = errors.Join(err, st.Close())
		delete(c.stmts, q)
	}
	return errors.Join(err, c.c.Close())
}

// readers is the read pool: connections handed out one at a time.
type readers struct {
	free chan *conn
	all  []*conn
}

func newReaders(ctx context.Context, db *sql.DB, n int) (*readers, error) {
	r := &readers{free: make(chan *conn, n)}
	for range n {
		c, err := newConn(ctx, db)
		if err != nil {
			r.close()
			return nil, fmt.Errorf("open a read connection: %w", err)
		}
		r.all = append(r.all, c)
		r.free <- c
	}
	return r, nil
}

// with runs fn on a free connection, waiting for one.
func (r *readers) with(ctx context.Context, fn func(c *conn) error) error {
	var c *conn
	select {
	case c = <-r.free:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { r.free <- c }()
	return fn(c)
}

func (r *readers) close() error {
	var err error
	for _, c := range r.all {
		err = errors.Join(err, c.close())
	}
	return err
}
