// Package pgtest runs real PostgreSQL servers for tests: initdb into a temporary
// directory, a free loopback port, the unix socket in that directory. The binaries come
// from Debian's postgresql package (/usr/lib/postgresql/*/bin). PostgreSQL refuses to
// run as root, so as root every server command runs as the postgres user (runuser).
//
// Outside CI a missing PostgreSQL skips the test with a message saying what to
// install; with CI=true it fails it, so a CI run cannot pass by testing nothing.
//
// A package shares one server across its tests (Shared, stopped by Main) and gives
// each test a database of its own (NewDatabase): initdb is the slow part.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options tune a server.
type Options struct {
	// Durable keeps fsync on: for benchmarks. Tests turn it off; a kill -9 of the
	// server loses nothing anyway (the kernel keeps what was written), only a host
	// crash would.
	Durable bool
	// Settings are extra postgresql.conf settings (name → value).
	Settings map[string]string
}

// Server is a PostgreSQL server started for tests.
type Server struct {
	Dir  string // data directory; the unix socket is in it too
	Port int
	bin  string
	opts Options

	mu      sync.Mutex
	stopped bool
	dbs     atomic.Int64
}

// binDir is the newest /usr/lib/postgresql/*/bin with initdb, or "".
func binDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return ""
}

func version(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// ErrMissing means no PostgreSQL binaries are installed.
var ErrMissing = errors.New("PostgreSQL is not installed (apt-get install postgresql: initdb and postgres under /usr/lib/postgresql/*/bin)")

// Require skips t (fails it under CI=true) when PostgreSQL is not installed.
func Require(t testing.TB) {
	t.Helper()
	if binDir() != "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(ErrMissing)
	}
	t.Skip(ErrMissing)
}

// asPostgres returns the command to run name as the postgres user when we are root.
func asPostgres(name string, args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	}
	return exec.Command(name, args...)
}

func run(cmd *exec.Cmd) error {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out.String())
	}
	return nil
}

// ownedDir makes a temporary directory the server's user owns.
func ownedDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("PostgreSQL runs as the postgres user, which does not exist: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}

// FreePort is a loopback TCP port nobody listens on now.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Start initialises a cluster in a new temporary directory and starts it.
func Start(opts Options) (*Server, error) {
	bin := binDir()
	if bin == "" {
		return nil, ErrMissing
	}
	dir, err := ownedDir("mfad-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, bin: bin, opts: opts}
	if err := run(asPostgres(filepath.Join(bin, "initdb"), "-D", s.data(), "-U", "postgres",
		"--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.configure(nil); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func (s *Server) data() string { return filepath.Join(s.Dir, "data") }

// configure writes the settings of the server, with extra ones on top.
func (s *Server) configure(extra map[string]string) error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	s.Port = port
	set := map[string]string{
		"port":                    strconv.Itoa(port),
		"listen_addresses":        "'127.0.0.1'",
		"unix_socket_directories": "'" + s.Dir + "'",
		"max_connections":         "300",
		"shared_buffers":          "64MB",
		"fsync":                   "off",
		"full_page_writes":        "off",
		"logging_collector":       "off",
		"log_min_messages":        "warning",
		"wal_level":               "replica",
		"max_wal_senders":         "10",
		"hot_standby":             "on",
	}
	if s.opts.Durable {
		set["fsync"], set["full_page_writes"] = "on", "on"
	}
	for k, v := range s.opts.Settings {
		set[k] = v
	}
	for k, v := range extra {
		set[k] = v
	}
	var b strings.Builder
	b.WriteString("\n# pgtest\n")
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, set[k])
	}
	f, err := os.OpenFile(filepath.Join(s.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(b.String())
	return errors.Join(err, f.Close())
}

func (s *Server) start() error {
	return run(asPostgres(filepath.Join(s.bin, "pg_ctl"), "-D", s.data(), "-l", filepath.Join(s.Dir, "log"),
		"-w", "-t", "60", "start"))
}

// URL is the connection URL of database db over TCP.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// Exec runs sql on database db.
func (s *Server) Exec(ctx context.Context, db, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, s.URL(db))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// CreateDatabase creates an empty database and returns its name.
func (s *Server) CreateDatabase(ctx context.Context, prefix string) (string, error) {
	name := fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), s.dbs.Add(1))
	if err := s.Exec(ctx, "postgres", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return name, nil
}

// NewDatabase creates an empty database for t, dropped when t ends, and returns its URL.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	name, err := s.CreateDatabase(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.mu.Lock()
		stopped := s.stopped
		s.mu.Unlock()
		if !stopped {
			_ = s.Exec(ctx, "postgres", "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		}
	})
	return s.URL(name)
}

// Log is what the server wrote to its log file.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "log"))
	return string(b)
}

// Stop stops the server (fast shutdown) and removes its directory.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	err := run(asPostgres(filepath.Join(s.bin, "pg_ctl"), "-D", s.data(), "-m", "immediate", "-w", "stop"))
	if err != nil && !s.down() {
		return err
	}
	return os.RemoveAll(s.Dir)
}

// down reports whether no postmaster runs on the data directory.
func (s *Server) down() bool {
	pid, err := s.postmaster()
	return err != nil || syscall.Kill(pid, 0) != nil
}

func (s *Server) postmaster() (int, error) {
	b, err := os.ReadFile(filepath.Join(s.data(), "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(line))
}

// Kill9 kills the postmaster and every backend of it with SIGKILL, as a host that
// dies would leave them: no shutdown, no goodbye to clients or standbys. The
// directory stays (Stop removes it).
func (s *Server) Kill9() error {
	pid, err := s.postmaster()
	if err != nil {
		return fmt.Errorf("find the postmaster: %w", err)
	}
	// Children first, so none of them outlives the postmaster long enough to answer.
	pids := append(children(pid), pid)
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range pids {
		for syscall.Kill(p, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces, so read after the last ')'.
		rest := string(b)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) > 1 {
			if ppid, _ := strconv.Atoi(f[1]); ppid == pid {
				out = append(out, p)
			}
		}
	}
	return out
}

// StartStandby makes a streaming replica of s named name (its application_name, to
// list in synchronous_standby_names) from a base backup, and starts it.
func (s *Server) StartStandby(name string) (*Server, error) {
	dir, err := ownedDir("mfad-pg-standby-")
	if err != nil {
		return nil, err
	}
	st := &Server{Dir: dir, bin: s.bin, opts: s.opts}
	conn := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres application_name=%s", s.Port, name)
	if err := run(asPostgres(filepath.Join(s.bin, "pg_basebackup"), "-D", st.data(), "-d", conn,
		"-R", "-X", "stream", "-c", "fast", "--no-sync")); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// The backup carries the primary's settings; the standby gets its own port and socket.
	if err := st.configure(nil); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := st.start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return st, nil
}

// Reconfigure appends settings and reloads the server.
func (s *Server) Reconfigure(set map[string]string) error {
	var b strings.Builder
	for k, v := range set {
		fmt.Fprintf(&b, "%s = %s\n", k, v)
	}
	f, err := os.OpenFile(filepath.Join(s.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return run(asPostgres(filepath.Join(s.bin, "pg_ctl"), "-D", s.data(), "reload"))
}

// Promote turns a standby into a primary and waits until it accepts writes.
func (s *Server) Promote() error {
	return run(asPostgres(filepath.Join(s.bin, "pg_ctl"), "-D", s.data(), "-w", "-t", "60", "promote"))
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
)

// Shared is the package's server, started on first use and stopped by Main. It skips
// (or under CI fails) t when PostgreSQL is not installed.
func Shared(t testing.TB) *Server {
	t.Helper()
	Require(t)
	sharedOnce.Do(func() { shared, sharedErr = Start(Options{}) })
	if sharedErr != nil {
		t.Fatalf("start PostgreSQL: %v", sharedErr)
	}
	return shared
}

// Main runs the tests of a package that uses Shared and stops its server afterwards:
// call it from TestMain, as os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest: stop PostgreSQL:", err)
		}
	}
	return code
}

// WaitSynchronous waits until the standby named name streams from s as its synchronous
// standby (set synchronous_standby_names first).
func (s *Server) WaitSynchronous(ctx context.Context, name string) error {
	for {
		var state string
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			err = conn.QueryRow(ctx, "SELECT sync_state FROM pg_stat_replication WHERE application_name = $1", name).Scan(&state)
			conn.Close(ctx)
		}
		if state == "sync" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("standby %s is not synchronous (state %q, %v): %w", name, state, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
