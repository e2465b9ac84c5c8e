package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels"
)

// Store is the SQLite database of one worker host. Writes go through a single connection:
// SQLite allows one writer at a time, and queueing in our own process (the workers'
// batcher) is cheaper and fairer than contending for the file lock. Reads use a pool of
// their own and see committed data only (WAL).
type Store struct {
	path  string
	chain *audit.Chain
	write *sql.DB // one connection: writer
	read  *sql.DB // the read pool's connections, and two for the outbox's reads

	wmu     sync.Mutex // the writer is used by one batch (or outbox write) at a time
	writer  *conn
	readers *readers

	marks        markQueue    // the relay's marks, waiting for a transaction
	markCommits  atomic.Int64 // transactions that carried only marks (tests count them)
	walRestarts  atomic.Int64 // WAL restarts under load (tests count them)
	walHolds     atomic.Int64 // times restartWAL held the writer back (tests count them)
	quickPass    atomic.Int64 // ns under which a passive pass counts as quick: quickPass, 0 in a test of a disk that never is
	walRestartAt atomic.Int64 // WAL bytes that make the checkpointer restart it: walRestartSize, less in tests
	writerIdle   atomic.Int64 // ns the writer must be idle before the WAL is truncated: idleWriter, less in tests
	walKeep      atomic.Int64 // ns the WAL is kept after the last busy tick: keepWAL, less in tests
	busyFrames   atomic.Int64 // WAL growth in a tick that makes it busy: busyGrowth, less in tests
	lastBusy     atomic.Int64 // Unix ns of the last checkpointer tick that saw the WAL grow by busyFrames
	walTruncates atomic.Int64 // WAL truncations (tests count them)

	checkpoint     *sql.DB // the checkpointer's own connection
	stopCheckpoint context.CancelFunc
	checkpointDone chan struct{}
	lastWrite      atomic.Int64 // Unix ns of the last write transaction's end
}

var _ channels.Store = (*Store)(nil)

// writerDriver is the SQLite driver of the writer connection: SQLite's automatic
// checkpoint is off there. It runs inside the commit that crosses the WAL threshold,
// copying pages back to the database file and fsyncing it, and on a large database
// that made one commit in every few hundred tens of milliseconds late. The
// checkpointer does that work beside the writer instead.
const writerDriver = "sqlite3-mfad-writer"

func init() {
	sql.Register(writerDriver, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		_, err := c.Exec(fmt.Sprintf("PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = %d", walSizeLimit), nil)
		return err
	}})
}

// checkpointEvery is how often the checkpointer copies the WAL back into the database.
// Each checkpoint ends with an fsync of the database file, which the writer's WAL fsync
// then queues behind; on a large database checkpoints every 250 ms set the tail of the
// write latency (1M users, delete-device p99 80–104 ms against 53–69 ms at 1 s, with the
// same throughput; BENCHMARKS.md). Less often again (2 s) gained nothing more and grew
// the WAL and RSS.
const checkpointEvery = time.Second

// walSizeLimit is what the WAL file is truncated to when a checkpoint has copied all
// of it back (PRAGMA journal_size_limit). Without it the file keeps the size of its
// busiest moment for ever: 3–10× the database under sustained load. Each restart of
// the WAL under load (restartWAL) holds the writer, usually for 1–9 ms (up to 78 ms
// before restartPasses, and still that long on a disk that never catches up); at
// 64 MB removals caused one every second, and 256 MB cut the p99 of verify and
// delete-device by a third (BENCHMARKS.md, "2026-11-30").
const walSizeLimit = 256 << 20

// checkpointBusy is the checkpoint connection's busy timeout: how long the idle
// TRUNCATE checkpoint waits for readers while it blocks new writers.
const checkpointBusy = 100 * time.Millisecond

// idleWriter is how long the writer must have been idle before the checkpointer
// truncates the WAL to nothing: a TRUNCATE checkpoint waits for readers and blocks
// writers while it waits, so it only runs when nobody is writing.
const idleWriter = 2 * time.Second

// keepWAL is how long the WAL file is kept after the last busy tick (one that saw it
// grow by busyGrowth frames) before an idle writer lets it be truncated. A WAL
// truncated between bursts is grown again from nothing by the next one, and paying the
// kernel for up to walSizeLimit of fresh file pages made druid-delete's p99 after a
// pause 10–30 % worse than with the file kept (BENCHMARKS.md). Until then the passive
// checkpoints keep the WAL copied back, and SQLite reuses the file. Busy is judged by
// growth, not by commits: the sweep and every readiness probe commit a small write,
// and counting those kept the file for good.
const keepWAL = 5 * time.Minute

// busyGrowth is the WAL growth in one checkpointer tick (a second) that counts as
// load: 1,024 frames, 4 MB. A sweep or a probe writes a few.
const busyGrowth = 1024

// Open opens (creating if needed) the database at path and migrates it to
// SchemaVersion. chain links the audit records the store appends. The file, its WAL
// and its shared-memory file are readable by their owner only.
func Open(ctx context.Context, path string, chain *audit.Chain) (*Store, error) {
	if chain == nil {
		return nil, errors.New("open store: no audit chain")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	if err := ownerOnly(path); err != nil {
		return nil, err
	}
	// _txlock=immediate: every transaction takes the write lock at BEGIN, so a
	// read-then-write inside it can never fail with SQLITE_BUSY half way.
	// synchronous=FULL: a commit is on disk before the reply leaves.
	write, err := sql.Open(writerDriver, dsn(path, url.Values{
		"_journal_mode": {"WAL"},
		"_synchronous":  {"FULL"},
		"_foreign_keys": {"on"},
		"_busy_timeout": {"10000"},
		"_txlock":       {"immediate"},
	}))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)

	if err := migrate(ctx, write, path, chain); err != nil {
		write.Close()
		return nil, err
	}
	read, err := sql.Open("sqlite3", dsn(path, url.Values{
		"_foreign_keys": {"on"},
		"_busy_timeout": {"10000"},
		"_query_only":   {"true"},
	}))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open database %s for reading: %w", path, err)
	}
	n := 2 * runtime.GOMAXPROCS(0)
	read.SetMaxOpenConns(n + 2)
	read.SetMaxIdleConns(n + 2)
	read.SetConnMaxLifetime(0)
	read.SetConnMaxIdleTime(0)

	// A short busy timeout: a TRUNCATE checkpoint blocks new writers while it waits
	// for readers, and it is better skipped than allowed to hold them up.
	cp, err := sql.Open("sqlite3", dsn(path, url.Values{
		"_busy_timeout": {strconv.FormatInt(checkpointBusy.Milliseconds(), 10)},
		"_synchronous":  {"FULL"},
	}))
	if err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("open database %s for checkpoints: %w", path, err)
	}
	cp.SetMaxOpenConns(1)
	s := &Store{path: path, chain: chain, write: write, read: read, checkpoint: cp}
	s.walRestartAt.Store(walRestartSize)
	s.writerIdle.Store(int64(idleWriter))
	s.walKeep.Store(int64(keepWAL))
	s.busyFrames.Store(busyGrowth)
	s.quickPass.Store(int64(quickPass))
	if s.writer, err = newConn(ctx, write); err != nil {
		_ = errors.Join(write.Close(), read.Close(), cp.Close())
		return nil, fmt.Errorf("open database %s for writing: %w", path, err)
	}
	if s.readers, err = newReaders(ctx, read, n); err != nil {
		_ = errors.Join(s.writer.close(), write.Close(), read.Close(), cp.Close())
		return nil, fmt.Errorf("open database %s for reading: %w", path, err)
	}
	cctx, stop := context.WithCancel(context.Background())
	s.stopCheckpoint, s.checkpointDone = stop, make(chan struct{})
	go s.checkpointer(cctx)
	return s, nil
}

// ownerOnly creates the database file with mode 0600 (SQLite gives its WAL and
// shared-memory files the mode of the database file) and narrows the mode of files
// an earlier version left readable by others.
func ownerOnly(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("restrict database file %s: %w", p, err)
		}
	}
	return nil
}

// checkpointer copies committed WAL frames back into the database file, PASSIVE: it
// never waits for the writer or the readers, and the writer never waits for it. Under
// sustained writes it restarts the WAL once it passes walRestartSize (restartWAL).
// Once the WAL has not grown by busyGrowth in a tick for keepWAL, and the writer has
// been idle for idleWriter, it truncates the WAL, so the file shrinks back after the
// load has gone.
func (s *Store) checkpointer(ctx context.Context) {
	defer close(s.checkpointDone)
	truncated := false
	frames := 0 // the WAL's length at the last passive checkpoint
	tick := time.NewTicker(checkpointEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		writing := time.Since(time.Unix(0, s.lastWrite.Load())) < time.Duration(s.writerIdle.Load())
		if writing || time.Since(time.Unix(0, s.lastBusy.Load())) < time.Duration(s.walKeep.Load()) {
			truncated = false
			// Errors are transient (SQLITE_BUSY while another checkpoint runs or a
			// reader holds an old snapshot); the next tick tries again.
			wal, _, err := s.passiveCheckpoint(ctx)
			if err != nil {
				continue
			}
			grown := wal - frames
			if wal < frames { // SQLite started the WAL over since the last tick
				grown = wal
			}
			frames = wal
			if int64(grown) >= s.busyFrames.Load() {
				s.lastBusy.Store(time.Now().UnixNano())
			}
			if int64(wal)*walFrameSize > s.walRestartAt.Load() {
				s.restartWAL(ctx)
			}
			continue
		}
		if !truncated {
			var busy, log, copied int
			err := s.checkpoint.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &log, &copied)
			truncated = err == nil && busy == 0
			if truncated {
				frames = 0
				s.walTruncates.Add(1)
			}
		}
	}
}

// walFrameSize is a WAL frame: a 24-byte header and a page (mfad's databases keep
// SQLite's default 4 KiB pages).
const walFrameSize = 24 + 4096

// walRestartSize is how large the WAL may grow under sustained writes before the
// checkpointer restarts it. SQLite starts a WAL over only when a checkpoint has copied
// every frame back, which never happens while the writer commits without a pause: the
// WAL grew to 1.7 GB beside a 270 MB database in ten seconds of mfaload, and every
// commit paid the kernel for fresh file pages. It is walSizeLimit, so the file SQLite
// keeps after a restart is the one that is reused.
const walRestartSize = walSizeLimit

// restartLeft is how many frames may be left to copy when restartWAL holds the writer
// back for the last of them: about 8 MB, a few milliseconds of copying.
const restartLeft = 2048

// restartPasses bounds the passive checkpoints restartWAL runs beside the writer
// before it holds it back, and quickPass is how quick one of them must be to end them
// early. A pass right after the tick's bulk copy waits for the disk to write that copy
// out: it took 15–30 ms with a few frames to copy, and so did a RESTART held at that
// moment, with every commit waiting behind it (5–78 ms, median about 32 ms, over six
// delete-device and druid-delete runs). Held after a pass that took under quickPass,
// the RESTART took 0.7–9.2 ms in 22 of 23 restarts and once 23.5 ms (BENCHMARKS.md,
// "2026-11-30, sixth session"). It is a heuristic: a pass with nothing to copy syncs
// nothing, so a quick pass does not prove that the disk is idle.
const (
	restartPasses = 8
	quickPass     = 1500 * time.Microsecond
)

// restartWait is how long the RESTART checkpoint waits for readers of old frames
// while the writer is held back. Reads take well under a millisecond; a long one (an
// export, an audit walk) makes the restart wait for a later tick rather than stall
// every commit behind it.
const restartWait = 10 * time.Millisecond

// errCheckpointBusy: another connection (mfad keys, the sqlite3 shell, a backup tool)
// was checkpointing, so this one copied nothing and knows nothing of the WAL.
var errCheckpointBusy = errors.New("another connection is checkpointing")

// passiveCheckpoint copies what it can without waiting and returns the WAL's length
// and how much of it is in the database file, in frames.
func (s *Store) passiveCheckpoint(ctx context.Context) (wal, copied int, err error) {
	var busy int
	if err := s.checkpoint.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &wal, &copied); err != nil {
		return 0, 0, err
	}
	if busy != 0 || wal < 0 { // SQLite's row is (1, -1, -1) then
		return 0, 0, errCheckpointBusy
	}
	return wal, copied, nil
}

// restartWAL makes the next write transaction start the WAL over. Passive checkpoints
// beside the writer come first, until one is quick (under quickPass) and leaves at
// most restartLeft frames, so that the disk has usually written out the bulk of the
// copy before the writer waits on it. Then a RESTART checkpoint copies the rest with
// the writer held back between batches (wmu), waiting up to restartWait for readers of
// the old frames. A disk on which no pass is quick still gets its restarts: after
// restartPasses passes the first one that leaves at most restartLeft frames (of two
// more at most) is enough, and the hold is then as long as the disk makes it. When
// more than restartLeft frames are still left (a reader holding an old snapshot, or
// writes outrunning the copy), or a reader outlasts the wait, the WAL stays as it is
// until the next tick.
func (s *Store) restartWAL(ctx context.Context) {
	quick := time.Duration(s.quickPass.Load())
	left := 0
	for pass := 0; pass < restartPasses+2; pass++ {
		start := time.Now()
		wal, copied, err := s.passiveCheckpoint(ctx)
		if err != nil {
			return
		}
		left = wal - copied
		if left <= restartLeft && (time.Since(start) < quick || pass >= restartPasses-1) {
			break
		}
	}
	if left > restartLeft {
		return
	}
	c, err := s.checkpoint.Conn(ctx)
	if err != nil {
		return
	}
	defer c.Close()
	// The checkpoint connection's own busy timeout is for the idle TRUNCATE; this
	// wait holds the writer, so it is shorter.
	if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", restartWait.Milliseconds())); err != nil {
		return
	}
	defer c.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA busy_timeout = %d", checkpointBusy.Milliseconds()))
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.walHolds.Add(1)
	var busy, wal, copied int
	err = c.QueryRowContext(ctx, "PRAGMA wal_checkpoint(RESTART)").Scan(&busy, &wal, &copied)
	if err == nil && busy == 0 {
		s.walRestarts.Add(1)
	}
}

func dsn(path string, params url.Values) string {
	return "file:" + path + "?" + params.Encode()
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Writable commits a small write, so the lock, the file system and fsync all answer:
// the readiness probe of a worker.
func (s *Store) Writable(ctx context.Context) error {
	err := s.withWriter(ctx, func(c *conn) error {
		_, err := c.exec(context.WithoutCancel(ctx), qWritable)
		return err
	})
	if err != nil {
		return fmt.Errorf("database not writable: %w", err)
	}
	return nil
}

// Close stops the checkpointer, checkpoints what is left and closes the pools.
func (s *Store) Close() error {
	s.stopCheckpoint()
	<-s.checkpointDone
	err := errors.Join(s.readers.close(), s.read.Close())
	// Best effort: what is not checkpointed now is at the next open.
	_, _ = s.checkpoint.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return errors.Join(err, s.checkpoint.Close(), s.writer.close(), s.write.Close())
}
