package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels"
)

// Store is a PostgreSQL database shared by any number of worker processes. Each write
// batch is one transaction that takes its users' locks first and the audit chain head
// last (Write); reads run on REPEATABLE READ snapshots of the same pool.
type Store struct {
	pool  *pgxpool.Pool
	chain *audit.Chain
	opts  Options

	// unchained appends audit records without the head (seq from a counter, no
	// links): only for measuring what the head costs.
	unchained    bool
	unchainedSeq atomic.Int64

	headBatches atomic.Int64 // batches that took the head
	// mispredicted counts batches run again because a write answered from a unit's
	// read did not go as predicted when sent (tx.speculate).
	mispredicted atomic.Int64
	headHeldNS   atomic.Int64 // total time they held it (lock granted → commit returned)
}

var _ channels.Store = (*Store)(nil)

// Options bound the store's transactions. Zero values take the defaults.
type Options struct {
	// LockTimeout bounds every wait for a lock (a user's, the chain head): a batch
	// that waits longer fails and is answered 503 instead of queueing behind a stuck
	// worker. Default 5s.
	LockTimeout time.Duration
	// IdleInTransaction ends a session that sits idle inside a transaction this long,
	// releasing its locks: a frozen worker (SIGSTOP, a GC pause gone wrong, a dead
	// host whose connection is still open) cannot hold the chain head for ever.
	// Default 5s.
	IdleInTransaction time.Duration
	// StatementTimeout bounds one statement. Default 10s.
	StatementTimeout time.Duration
	// WriteTimeout bounds a whole write batch from BEGIN to COMMIT on the client side,
	// so a connection to a host that vanished is given up. Default 15s.
	WriteTimeout time.Duration
	// KeepAlive is the TCP keepalive idle time of the connections (probes every
	// KeepAlive/2, three unanswered close it): a primary that vanished without closing
	// its sockets is noticed in seconds, not after the kernel's two hours. Default 5s.
	KeepAlive time.Duration
	// MaxConns is the pool size when the URL has no pool_max_conns. Default 16.
	MaxConns int32
}

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.LockTimeout, 5*time.Second)
	def(&o.IdleInTransaction, 5*time.Second)
	def(&o.StatementTimeout, 10*time.Second)
	def(&o.WriteTimeout, 15*time.Second)
	def(&o.KeepAlive, 5*time.Second)
	if o.MaxConns <= 0 {
		o.MaxConns = 16
	}
}

// relayClaimIdle is how long a notification claim may sit idle in its transaction:
// the relay publishes the claimed rows and waits for their acknowledgements (up to 5s)
// before it deletes them.
const relayClaimIdle = 30 * time.Second

// Open connects to the database at url (postgres://…, multi-host URLs with
// target_session_attrs=read-write included), migrates it to SchemaVersion under a lock
// and returns the store. chain links the audit records it appends.
func Open(ctx context.Context, url string, chain *audit.Chain, opts Options) (*Store, error) {
	if chain == nil {
		return nil, errors.New("open store: no audit chain")
	}
	opts.setDefaults()
	cfg, err := poolConfig(url, opts)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL %s: %w", Describe(url), err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	if err := checkChainKey(ctx, pool, chain); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{pool: pool, chain: chain, opts: opts}, nil
}

// chainCanary is the store_meta name of a fact sealed with the audit chain key the
// database's records are linked with. Several workers share the log: one started with
// another MFAD_AUDIT_KEY (or a key generated in its own data dir) would link records
// nobody can verify, so it is refused at start.
const chainCanary = "audit_chain_canary"

// ErrChainKey means the configured audit chain keys are not the database's.
var ErrChainKey = errors.New("the audit chain key does not match this database")

func checkChainKey(ctx context.Context, pool *pgxpool.Pool, chain *audit.Chain) error {
	const fact = "mfad audit chain canary"
	if _, err := pool.Exec(ctx, qInitMeta, chainCanary, chain.Seal(fact)); err != nil {
		return wrapUnavailable(fmt.Errorf("record the audit chain key: %w", err))
	}
	var tag []byte
	if err := pool.QueryRow(ctx, qMeta, chainCanary).Scan(&tag); err != nil {
		return wrapUnavailable(fmt.Errorf("read the audit chain key: %w", err))
	}
	if !chain.Opens(fact, tag) {
		return fmt.Errorf("records are linked with key id %s, configured key ids are %s (set MFAD_AUDIT_KEY to the key every worker shares): %w",
			audit.TagKeyID(tag), strings.Join(chain.KeyIDs(), ", "), ErrChainKey)
	}
	return nil
}

// poolConfig parses url and adds what the store needs: keepalives, a default pool
// size, and the name the sessions show in pg_stat_activity.
func poolConfig(url string, opts Options) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgconn's parse errors mask the password.
		return nil, fmt.Errorf("database URL: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = opts.MaxConns
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: opts.KeepAlive, Interval: max(opts.KeepAlive/2, time.Second), Count: 3}}
	cfg.ConnConfig.DialFunc = dialer.DialContext
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "mfad"
	}
	return cfg, nil
}

// Describe names the database of url for logs and /readyz: hosts, ports and database
// name, never the user's password or other parameters.
func Describe(url string) string {
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		return "postgres (unparsable URL)"
	}
	hosts := []string{net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))}
	for _, f := range cfg.Fallbacks {
		if h := net.JoinHostPort(f.Host, strconv.Itoa(int(f.Port))); h != hosts[len(hosts)-1] {
			hosts = append(hosts, h)
		}
	}
	return "postgres://" + strings.Join(hosts, ",") + "/" + cfg.Database
}

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Writable commits a small write: the readiness probe of a worker. On a standby, or
// with no primary reachable, it fails.
func (s *Store) Writable(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, qWritable); err != nil {
		return fmt.Errorf("database not writable: %w", err)
	}
	return nil
}

// HeadStats are the batches that appended audit records and the total time they held
// the chain head, from the lock being granted to the commit returning.
func (s *Store) HeadStats() (batches int64, held time.Duration) {
	return s.headBatches.Load(), time.Duration(s.headHeldNS.Load())
}

// unavailable reports whether err says the database cannot take the transaction now
// (connection lost or refused, a failover in progress, a standby, a lock or statement
// timeout) rather than anything about the command: the command is answered 503 and
// may be retried.
func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "57P"), // operator intervention: shutdown, cannot connect now
			strings.HasPrefix(pgErr.Code, "53"),  // insufficient resources
			pgErr.Code == "25006",                // read-only transaction: a standby
			pgErr.Code == "55P03",                // lock_timeout
			pgErr.Code == "57014",                // statement_timeout, query cancelled
			pgErr.Code == "25P03",                // idle in transaction timeout
			retryable(err):
			return true
		}
		return false
	}
	var (
		connErr *pgconn.ConnectError
		netErr  net.Error
	)
	return errors.As(err, &connErr) || errors.As(err, &netErr) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, pgx.ErrTxClosed)
}

// retryable reports whether PostgreSQL aborted the transaction for a reason that
// running it again may not meet: a deadlock or a serialization failure.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// wrapUnavailable marks err as channels.ErrUnavailable when it is one.
func wrapUnavailable(err error) error {
	if err != nil && unavailable(err) && !errors.Is(err, channels.ErrUnavailable) {
		return fmt.Errorf("%w: %w", channels.ErrUnavailable, err)
	}
	return err
}

func seconds(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }
