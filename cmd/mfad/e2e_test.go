package main

// Black-box tests: they build the mfad binary (and a nats-server from the module we
// already require), start them as separate processes and talk to them over HTTP and
// NATS the way a client or an operator would.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mfad/mfad/activity/natstest"
	"github.com/mfad/mfad/channels/postgres/pgtest"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
)

// binDir holds the binaries built for this test run; TestMain removes it. It is made
// on the first build, not in TestMain: the helper processes that re-run this test
// binary leave through os.Exit in main and would each leave an empty directory behind.
var (
	binDirOnce sync.Once
	binDir     string
	binDirErr  error
)

func buildDir() (string, error) {
	binDirOnce.Do(func() { binDir, binDirErr = os.MkdirTemp("", "mfad-e2e-") })
	return binDir, binDirErr
}

func TestMain(m *testing.M) {
	code := pgtest.Main(m) // runs the tests, then stops the package's PostgreSQL
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// Binaries are built on first use, not in TestMain, so that running one unit test
// (go test -run TestToken) does not pay for two builds.
var (
	mfadOnce sync.Once
	mfadBin  string
	mfadErr  error
	natsOnce sync.Once
	natsBin  string
	natsErr  error
)

func goBuild(out string, args ...string) error {
	cmd := exec.Command("go", append([]string{"build", "-o", out}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return nil
}

// mfadBinary builds ./cmd/mfad, with -race when the tests run with it.
func mfadBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	mfadOnce.Do(func() {
		dir, err := buildDir()
		if err != nil {
			mfadErr = err
			return
		}
		mfadBin = filepath.Join(dir, "mfad")
		args := []string{"."}
		if raceEnabled {
			args = []string{"-race", "."}
		}
		mfadErr = goBuild(mfadBin, args...)
	})
	if mfadErr != nil {
		t.Fatal(mfadErr)
	}
	return mfadBin
}

// natsServerBinary builds nats-server from the version in go.mod (Debian's package is
// far older). Failing that it takes bin/nats-server or one on PATH. Without any, the
// test is skipped, except in CI where the external-NATS shape must be tested.
func natsServerBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	natsOnce.Do(func() {
		dir, err := buildDir()
		if err != nil {
			natsErr = err
			return
		}
		natsBin = filepath.Join(dir, "nats-server")
		if natsErr = goBuild(natsBin, "github.com/nats-io/nats-server/v2"); natsErr == nil {
			return
		}
		if _, err := os.Stat("../../bin/nats-server"); err == nil {
			natsBin, natsErr = filepath.Abs("../../bin/nats-server")
			return
		}
		if p, err := exec.LookPath("nats-server"); err == nil {
			natsBin, natsErr = p, nil
		}
	})
	if natsErr != nil {
		msg := fmt.Sprintf("no nats-server binary: building github.com/nats-io/nats-server/v2 failed and none is in bin/ or on PATH: %v", natsErr)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return natsBin
}

// process is a child process whose stderr is collected line by line.
type process struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and its output is read

	mu    sync.Mutex
	lines []string

	stdout lockedBuffer // what it printed (mfad gateway --dev prints messages)
}

// cleanEnv is the test's environment without MFAD_* variables, so a developer's
// settings cannot leak into a run.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MFAD_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func startProcess(t *testing.T, name, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{t: t, name: name, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Dir = t.TempDir() // a default ./data must never land in the source tree
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = &p.stdout
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- %s output:\n%s", name, strings.Join(p.output(), "\n"))
		}
	})
	return p
}

func (p *process) output() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// logs are the process's JSON log lines, decoded; other lines are skipped.
func (p *process) logs() []map[string]any {
	var out []map[string]any
	for _, l := range p.output() {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// logged returns the first JSON log line with message msg.
func (p *process) logged(msg string) (map[string]any, bool) {
	for _, m := range p.logs() {
		if m["msg"] == msg {
			return m, true
		}
	}
	return nil, false
}

// waitLog waits for a JSON log line with message msg.
func (p *process) waitLog(msg string) map[string]any {
	p.t.Helper()
	var line map[string]any
	p.waitFor("log "+msg, func() bool {
		var ok bool
		line, ok = p.logged(msg)
		return ok
	})
	return line
}

// waitText waits for an output line containing s (nats-server logs plain text).
func (p *process) waitText(s string) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("a line with %q", s), func() bool {
		for _, l := range p.output() {
			if strings.Contains(l, s) {
				return true
			}
		}
		return false
	})
}

func (p *process) waitFor(what string, cond func() bool) {
	p.t.Helper()
	deadline := time.After(60 * time.Second)
	for !cond() {
		select {
		case <-p.done:
			if cond() {
				return
			}
			p.t.Fatalf("%s exited (%v) before %s", p.name, p.cmd.ProcessState, what)
		case <-deadline:
			p.t.Fatalf("%s: no %s within 60s", p.name, what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and returns the exit code, failing if the process takes longer
// than a graceful shutdown should.
func (p *process) stop() int {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("signal %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Fatalf("%s still running 10s after SIGTERM", p.name)
	}
	p.t.Logf("%s stopped in %v", p.name, time.Since(start).Round(time.Millisecond))
	return p.cmd.ProcessState.ExitCode()
}

// stopCleanly stops an mfad process and checks the shutdown: exit status 0, the last
// log line "stopped", and no error logged during the whole run.
func (p *process) stopCleanly() {
	p.t.Helper()
	if code := p.stop(); code != 0 {
		p.t.Fatalf("%s exited with status %d after SIGTERM, want 0", p.name, code)
	}
	logs := p.logs()
	if len(logs) == 0 || logs[len(logs)-1]["msg"] != "stopped" {
		p.t.Fatalf(`%s: last log line is not "stopped"`, p.name)
	}
	for _, l := range logs {
		if l["level"] == "ERROR" {
			p.t.Fatalf("%s logged an error: %v", p.name, l)
		}
	}
}

// startMFAD runs `mfad serve` with env (MFAD_* settings) and waits until it has started.
func startMFAD(t *testing.T, name string, env ...string) *process {
	t.Helper()
	p := startProcess(t, name, mfadBinary(t), cleanEnv(env...), "serve")
	p.waitLog("mfad started")
	return p
}

// httpAddr is the address the process logged it listens on.
func (p *process) httpAddr() string {
	p.t.Helper()
	line, ok := p.logged("HTTP listening")
	if !ok {
		p.t.Fatalf("%s did not log HTTP listening", p.name)
	}
	addr, _ := line["addr"].(string)
	if addr == "" {
		p.t.Fatalf("%s logged HTTP listening without an addr: %v", p.name, line)
	}
	return addr
}

// mintToken runs `mfad token` and returns the token it prints.
func mintToken(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(mfadBinary(t), append([]string{"token"}, args...)...)
	cmd.Env = cleanEnv(env...)
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mfad token: %v\n%s", err, stderr.String())
	}
	tok := strings.TrimSpace(stdout.String())
	if strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n") {
		t.Fatalf("mfad token printed %q, want one JWT", stdout.String())
	}
	return tok
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func httpGet(t *testing.T, url, token string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Fatalf("GET %s: answer is not a JSON object: %v\n%s", url, err, raw)
	}
	return a
}

// checkStatus calls GET /api/v1/mfa/status as a fresh user would see it.
func checkStatus(t *testing.T, base, token string) {
	t.Helper()
	a := httpGet(t, base+"/api/v1/mfa/status", token)
	if a.status != http.StatusOK {
		t.Fatalf("status call: %d %s", a.status, a.raw)
	}
	data, _ := a.body["data"].(map[string]any)
	methods, isList := data["methods"].([]any)
	if a.body["success"] != true || data["enabled"] != false || !isList || len(methods) != 0 ||
		data["backup_codes_remaining"] != float64(0) {
		t.Fatalf("status envelope: %s", a.raw)
	}
	if _, ok := a.body["message"].(string); !ok {
		t.Fatalf("status envelope has no message: %s", a.raw)
	}
	if a.header.Get("X-Request-Id") == "" {
		t.Fatal("no X-Request-Id on the answer")
	}
	if a := httpGet(t, base+"/api/v1/mfa/status", ""); a.status != http.StatusUnauthorized ||
		!strings.Contains(a.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("status without a token: %d %q %s", a.status, a.header.Get("WWW-Authenticate"), a.raw)
	}
}

// checkReady wants /healthz up and /readyz ready, every check ok, the checks in want
// present and those in absent not run.
func checkReady(t *testing.T, base string, want []string, absent ...string) {
	t.Helper()
	if a := httpGet(t, base+"/healthz", ""); a.status != http.StatusOK || a.body["status"] != "ok" {
		t.Fatalf("/healthz: %d %s", a.status, a.raw)
	}
	a := httpGet(t, base+"/readyz", "")
	got, _ := a.body["checks"].(map[string]any)
	if a.status != http.StatusOK || a.body["status"] != "ready" {
		t.Fatalf("/readyz: %d %s, want ready", a.status, a.raw)
	}
	for name, v := range got {
		if v != "ok" {
			t.Fatalf("/readyz: check %s = %v (%s)", name, v, a.raw)
		}
	}
	for _, c := range want {
		if _, ok := got[c]; !ok {
			t.Fatalf("/readyz: no %s check (%s)", c, a.raw)
		}
	}
	for _, c := range absent {
		if _, ok := got[c]; ok {
			t.Fatalf("/readyz: a %s check on a node without one (%s)", c, a.raw)
		}
	}
}

func TestServeEmbedded(t *testing.T) {
	dataDir := t.TempDir()
	p := startMFAD(t, "mfad",
		"MFAD_DATA_DIR="+dataDir, "MFAD_HTTP_ADDR=127.0.0.1:0", "MFAD_NATS_LISTEN=127.0.0.1:0")
	base := "http://" + p.httpAddr()

	cfg, ok := p.logged("effective configuration")
	if !ok || cfg["MFAD_DATA_DIR"] != dataDir || cfg["MFAD_ROLE"] != "all" {
		t.Fatalf("effective configuration not logged or wrong: %v", cfg)
	}
	nl, ok := p.logged("embedded NATS listening")
	if !ok {
		t.Fatal("no embedded NATS listening log line")
	}

	token := mintToken(t, nil, "--sub", "alice", "--data-dir", dataDir)
	checkStatus(t, base, token)
	checkReady(t, base, []string{"nats", "database"})

	// The embedded server is a real NATS server for outside clients too: the mfa
	// micro service answers discovery there, for the auditor user.
	t.Run("micro service on the embedded NATS", func(t *testing.T) {
		addr, _ := nl["addr"].(string)
		nc := natstest.Connect(t, natsURLOf(t, dataDir, addr, "auditor"))
		subject, err := micro.ControlSubject(micro.PingVerb, "mfa", "")
		if err != nil {
			t.Fatal(err)
		}
		msg, err := nc.Request(subject, nil, 5*time.Second)
		if err != nil {
			t.Fatalf("ping the mfa service: %v", err)
		}
		var ping micro.Ping
		if err := json.Unmarshal(msg.Data, &ping); err != nil || ping.Name != "mfa" {
			t.Fatalf("ping answer %s (%v)", msg.Data, err)
		}
	})

	p.stopCleanly()

	// The no-configuration start leaves its state in the data dir; generated keys and
	// passwords are readable by the owner only.
	for _, name := range []string{"mfad.db", "nats", devJWTSecretFile, sealingKeyFile, natsUsersFile} {
		st, err := os.Stat(filepath.Join(dataDir, name))
		if err != nil {
			t.Fatalf("data dir: %v", err)
		}
		isKey := name == devJWTSecretFile || name == sealingKeyFile || name == natsUsersFile
		if perm := st.Mode().Perm(); isKey && perm != 0o600 {
			t.Fatalf("%s has mode %v, want 0600", name, perm)
		}
	}
}

// freePort finds a loopback port no one listens on (for nats-server, which needs one
// on its command line).
func freePort(t *testing.T) int {
	t.Helper()
	return freePorts(t, 1)[0]
}

// freePorts returns n distinct free ports: the listeners stay open until all are
// picked, or the kernel could hand a port just closed out again (a cluster's nodes
// once got the same monitoring port).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

func TestServeExternalNATS(t *testing.T) {
	bin := natsServerBinary(t)
	port := freePort(t)
	ns := startProcess(t, "nats-server", bin, cleanEnv(),
		"-js", "-a", "127.0.0.1", "-p", fmt.Sprint(port), "-sd", t.TempDir())
	ns.waitText("Server is ready")
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", port)

	t.Run("all roles", func(t *testing.T) {
		const secret = "an-external-hs256-secret-of-40-bytes-long"
		env := []string{"MFAD_NATS_URL=" + natsURL, "MFAD_JWT_SECRET=" + secret}
		p := startMFAD(t, "mfad", append(env, "MFAD_DATA_DIR="+t.TempDir(), "MFAD_HTTP_ADDR=127.0.0.1:0",
			// The embedded server must not start: if it did, this port would clash.
			"MFAD_NATS_LISTEN="+fmt.Sprintf("127.0.0.1:%d", port))...)
		if _, ok := p.logged("embedded NATS listening"); ok {
			t.Fatal("mfad started an embedded NATS server although MFAD_NATS_URL is set")
		}
		base := "http://" + p.httpAddr()
		checkStatus(t, base, mintToken(t, env, "--sub", "alice"))
		checkReady(t, base, []string{"nats", "database"})

		cfg, _ := p.logged("effective configuration")
		if cfg["MFAD_JWT_SECRET"] != "********" || cfg["MFAD_NATS_URL"] != natsURL {
			t.Fatalf("effective configuration: %v", cfg)
		}
		if out := strings.Join(p.output(), "\n"); strings.Contains(out, secret) {
			t.Fatal("the JWT secret appears in the log")
		}
		checkStreams(t, natsURL)
		p.stopCleanly()
	})

	t.Run("api and worker processes", func(t *testing.T) {
		workerDir, apiDir := t.TempDir(), t.TempDir()
		worker := startMFAD(t, "mfad worker",
			"MFAD_NATS_URL="+natsURL, "MFAD_ROLE=worker", "MFAD_DATA_DIR="+workerDir, "MFAD_DEBUG_ADDR=127.0.0.1:0")
		if _, ok := worker.logged("HTTP listening"); ok {
			t.Fatal("a worker-only process serves HTTP")
		}
		// Its probes are on its only listener, the debug one: a supervisor can tell a
		// worker that lost its database from one that serves.
		dbg, ok := worker.logged("debug server listening")
		if !ok {
			t.Fatal("no debug server listening log line")
		}
		checkReady(t, "http://"+dbg["addr"].(string), []string{"nats", "database", "outbox"})
		api := startMFAD(t, "mfad api",
			"MFAD_NATS_URL="+natsURL, "MFAD_ROLE=api", "MFAD_DATA_DIR="+apiDir, "MFAD_HTTP_ADDR=127.0.0.1:0")
		base := "http://" + api.httpAddr()
		checkStatus(t, base, mintToken(t, nil, "--sub", "bob", "--data-dir", apiDir))
		checkReady(t, base, []string{"nats"}, "database")

		// The database lives with the worker; the API node holds no state of its own.
		if _, err := os.Stat(filepath.Join(workerDir, "mfad.db")); err != nil {
			t.Fatalf("worker data dir: %v", err)
		}
		if _, err := os.Stat(filepath.Join(apiDir, "mfad.db")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("the API node created a database (%v)", err)
		}
		api.stopCleanly()
		worker.stopCleanly()
	})
}

// checkStreams wants mfad's JetStream streams on the external server.
func checkStreams(t *testing.T, url string) {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, name := range []string{"MFA_EVENTS", "MFA_ACTIVITIES", "MFA_NOTIFY"} {
		if _, err := js.Stream(ctx, name); err != nil {
			t.Fatalf("stream %s on the external server: %v", name, err)
		}
	}
}

// TestBinaryExitStatus: usage mistakes exit 2 with one line on stderr; version exits 0.
func TestBinaryExitStatus(t *testing.T) {
	bin := mfadBinary(t)
	cases := []struct {
		args   []string
		env    []string
		status int
		stderr string // the whole of stderr, when not empty
	}{
		{[]string{"version"}, nil, 0, ""},
		{[]string{"serve", "--no-such-flag"}, nil, 2, "mfad: serve: flag provided but not defined: -no-such-flag\n"},
		{[]string{"serve"}, []string{"MFAD_ROLE=boss"}, 2, "mfad: --role must be all, api or worker, not \"boss\"\n"},
		{[]string{"token"}, nil, 2, "mfad: token: --sub is required (1 to 128 characters)\n"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(append(tc.env, tc.args...), " "), func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = cleanEnv(tc.env...)
			cmd.Dir = t.TempDir()
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if tc.status == 0 && err != nil || tc.status != 0 && (!errors.As(err, &exit) || exit.ExitCode() != tc.status) {
				t.Fatalf("exit: %v, want status %d; stderr %q", err, tc.status, stderr.String())
			}
			if tc.stderr != "" && stderr.String() != tc.stderr {
				t.Fatalf("stderr = %q, want %q", stderr.String(), tc.stderr)
			}
		})
	}
}
