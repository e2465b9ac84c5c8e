package main

// End-to-end tests of workers sharing PostgreSQL (issue 13): the built binary, a real
// nats-server, a real PostgreSQL (channels/postgres/pgtest), load through HTTP.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
	"github.com/mfad/mfad/activity/natstest"
	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels/postgres"
	"github.com/mfad/mfad/channels/postgres/pgtest"
)

const pgSecret = "postgres-e2e-hs256-secret-of-at-least-32-bytes"

var (
	pgSealKey  = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	pgAuditKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{8}, 32))
)

// pgDeployment is one database, one nats-server, and the mfad processes of a test.
type pgDeployment struct {
	t    *testing.T
	url  string
	nats string
	js   jetstream.JetStream
}

// newPGDeployment starts a nats-server with JetStream for mfad processes that share the
// database at url.
func newPGDeployment(t *testing.T, url string) *pgDeployment {
	t.Helper()
	mfadBinary(t) // build first: the clock of what follows should not include it
	port := freePort(t)
	ns := startProcess(t, "nats-server", natsServerBinary(t), cleanEnv(),
		"-js", "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-sd", t.TempDir())
	ns.waitText("Server is ready")
	d := &pgDeployment{t: t, url: url, nats: fmt.Sprintf("nats://127.0.0.1:%d", port)}
	js, err := jetstream.New(natstest.Connect(t, d.nats))
	if err != nil {
		t.Fatal(err)
	}
	d.js = js
	return d
}

// env is what every process of the deployment is started with.
func (d *pgDeployment) env(extra ...string) []string {
	return append([]string{"MFAD_NATS_URL=" + d.nats, "MFAD_JWT_SECRET=" + pgSecret,
		"MFAD_DATA_DIR=" + d.t.TempDir(), "MFAD_SECRET_KEY=" + pgSealKey, "MFAD_AUDIT_KEY=" + pgAuditKey,
		"MFAD_RELAY_LEASE=3s"}, extra...)
}

// worker starts `mfad serve --role worker` on the database, with a debug listener
// serving its metrics.
func (d *pgDeployment) worker(name string) *process {
	return startMFAD(d.t, name, d.env("MFAD_ROLE=worker", "MFAD_DATABASE_URL="+d.url, "MFAD_DEBUG_ADDR=127.0.0.1:0")...)
}

// api starts `mfad serve --role api`.
func (d *pgDeployment) api(name string) *process {
	return startMFAD(d.t, name, d.env("MFAD_ROLE=api", "MFAD_HTTP_ADDR=127.0.0.1:0")...)
}

// store opens the database as a worker would (the tests read it through the store,
// not with SQL of their own).
func (d *pgDeployment) store() *postgres.Store {
	d.t.Helper()
	key, _ := base64.StdEncoding.DecodeString(pgAuditKey)
	chain, err := audit.NewChain(key)
	if err != nil {
		d.t.Fatal(err)
	}
	s, err := postgres.Open(context.Background(), d.url, chain, postgres.Options{MaxConns: 2})
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { s.Close() })
	return s
}

// readAuditPG reads the whole audit log, as readAudit does for SQLite.
func readAuditPG(t *testing.T, s *postgres.Store) []auditRecord {
	t.Helper()
	var out []auditRecord
	err := s.Records().Walk(context.Background(), func(r *audit.Record) error {
		var body struct {
			Object mfa.EventObject `json:"object"`
		}
		if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
			return fmt.Errorf("audit record %d: body %v", r.Seq, err)
		}
		out = append(out, auditRecord{seq: r.Seq, eventID: r.EventID, typ: r.Type, user: r.UserID, body: r.Body,
			published: r.Published, object: body.Object.ID})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// drained waits until every audit record is marked published and is the stream's last.
func (d *pgDeployment) drained(s *postgres.Store, limit time.Duration) {
	d.t.Helper()
	pollUntil(d.t, limit, "drained outbox", func() bool {
		n, _, err := s.Outbox().Backlog(context.Background())
		if err != nil || n != 0 {
			return false
		}
		next, err := s.Outbox().FirstUnpublished(context.Background())
		return err == nil && lastEventSeq(d.js) == next-1
	})
}

// leaseHolderPID is the pid in the relay lease's holder ("host:pid:suffix"), 0 when
// nobody holds it.
func leaseHolderPID(s *postgres.Store) int {
	st, err := s.RelayLease().Current(context.Background())
	if err != nil || !st.Held {
		return 0
	}
	parts := strings.Split(st.Holder, ":")
	if len(parts) < 3 {
		return 0
	}
	pid, _ := strconv.Atoi(parts[len(parts)-2])
	return pid
}

// commandsRun is how many commands of typ a worker answered, from its /metrics.
// debugURL is the base URL of p's --debug-addr listener.
func debugURL(t *testing.T, p *process) string {
	t.Helper()
	line, ok := p.logged("debug server listening")
	addr, _ := line["addr"].(string)
	if !ok || addr == "" {
		t.Fatalf("%s logged no debug address", p.name)
	}
	return "http://" + addr
}

func commandsRun(t *testing.T, p *process, typ string) int {
	t.Helper()
	resp, err := http.Get(debugURL(t, p) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "mfad_command_replies_total{") && strings.Contains(l, `type="`+typ+`"`) {
			f := strings.Fields(l)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			n += int(v)
		}
	}
	return n
}

// enrol sets up and verifies a TOTP device for a user through base and returns its
// secret and the time step its verification used.
func enrol(t *testing.T, c *apiClient, base, token string) (string, int64) {
	t.Helper()
	a, err := c.do(http.MethodPost, base+"/api/v1/mfa/totp/setup", token, `{"device_name":"phone"}`)
	if err != nil || a.status != http.StatusOK {
		t.Fatalf("setup: %v %d %s", err, a.status, a.raw)
	}
	secret, _ := get(a.body, "data", "secret").(string)
	id, _ := get(a.body, "data", "device_id").(float64)
	step := time.Now().Unix() / 30
	a, err = c.do(http.MethodPost, base+"/api/v1/mfa/totp/verify", token,
		fmt.Sprintf(`{"code":%q,"device_id":%d}`, totpCode(t, secret, step), int64(id)))
	if err != nil || a.status != http.StatusOK {
		t.Fatalf("verify setup: %v %d %s", err, a.status, a.raw)
	}
	return secret, step
}

// TestPostgresTwoWorkersKill9: one API node and two workers on one database, users
// enrolling, signing in and removing devices through HTTP; the worker holding the relay
// lease is killed with SIGKILL mid-run. Then
//   - every write answered 200 has its one audit record (a reply never goes out before
//     its commit, whichever worker ran it), and nothing was answered 500: the commands
//     the dead worker owed were answered 503 and resent with their Idempotency-Key;
//   - the relay lease moves to the survivor, which publishes the rest;
//   - MFA_EVENTS holds exactly the audit log, once each, in seq order;
//   - the audit chain (one chain, written by two processes) verifies.
func TestPostgresTwoWorkersKill9(t *testing.T) {
	srv := pgtest.Shared(t)
	d := newPGDeployment(t, srv.NewDatabase(t))
	w1 := d.worker("mfad worker 1")
	w2 := d.worker("mfad worker 2")
	api := d.api("mfad api")
	s := d.store()
	pollUntil(t, 30*time.Second, "a relay lease holder", func() bool { return leaseHolderPID(s) != 0 })
	holder, survivor := w1, w2
	if leaseHolderPID(s) == w2.cmd.Process.Pid {
		holder, survivor = w2, w1
	}

	drv := &loadDriver{t: t, client: newAPIClient(pgSecret, 20*time.Second), bases: []string{baseURL(api)}, giveUp: 30 * time.Second}
	stop := make(chan struct{})
	wait := drv.run(12, "pg", stop)
	const phase = 150
	pollUntil(t, 90*time.Second, "traffic on two workers", func() bool { return drv.ok.Load() >= phase || drv.failing() })
	drv.report()
	killedAt := drv.ok.Load()
	holder.kill9()
	t.Logf("killed %s, the relay lease holder, after %d answered operations", holder.name, killedAt)
	pollUntil(t, 90*time.Second, "traffic after the kill", func() bool { return drv.ok.Load() >= killedAt+phase || drv.failing() })
	close(stop)
	wait()
	drv.report()
	pollUntil(t, 30*time.Second, "the survivor holding the relay lease", func() bool {
		return leaseHolderPID(s) == survivor.cmd.Process.Pid
	})
	survivor.waitLog("relay lease taken: publishing MFA_EVENTS")
	d.drained(s, 60*time.Second)
	t.Logf("%d operations answered; %d answers were 503 and resent", drv.ok.Load(), drv.unavailable.Load())

	rows := readAuditPG(t, s)
	checkEventsMatchAudit(t, readEvents(t, d.js), rows)
	checkOpsHaveEvents(t, drv.ops, rows, true)
	api.stopCleanly()
	survivor.stopCleanly()
	verifyPG(t, d.url, len(rows))
}

// verifyPG runs `mfad audit verify --database-url` and wants n records to verify.
func verifyPG(t *testing.T, url string, n int) {
	t.Helper()
	cmd := exec.Command(mfadBinary(t), "audit", "verify", "--database-url", url)
	cmd.Env = cleanEnv("MFAD_AUDIT_KEY=" + pgAuditKey)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil || out.String() != fmt.Sprintf("ok: %d records\n", n) {
		t.Fatalf("mfad audit verify: %v, stdout %q, stderr %q", err, out.String(), strings.TrimSpace(errOut.String()))
	}
}

// TestPostgresRacesAcrossWorkers: the contracts that one SQLite writer made true by
// serialising everything hold with two worker processes on one database.
//   - 50 submissions of one TOTP code at once, spread over both workers: exactly one
//     signs in; every other is refused (the step is used), none fails;
//   - 20 wrong codes at once: exactly the lockout threshold (5) are counted and answered
//     INVALID_CODE, the 5th starting the lock; the other 15 find the user locked.
func TestPostgresRacesAcrossWorkers(t *testing.T) {
	srv := pgtest.Shared(t)
	d := newPGDeployment(t, srv.NewDatabase(t))
	w1 := d.worker("mfad worker 1")
	w2 := d.worker("mfad worker 2")
	base := baseURL(d.api("mfad api"))
	c := newAPIClient(pgSecret, 20*time.Second)

	t.Run("one code, fifty submissions", func(t *testing.T) {
		token := c.token(t, "racer")
		secret, step := enrol(t, c, base, token)
		before := commandsRun(t, w1, mfa.CmdVerify) + commandsRun(t, w2, mfa.CmdVerify)
		code := totpCode(t, secret, step+1)
		outcomes := verifyAtOnce(t, c, base, token, code, 50)
		if outcomes["OK"] != 1 {
			t.Fatalf("one code submitted 50 times at once: %v, want exactly one OK", outcomes)
		}
		for o, n := range outcomes {
			if o != "OK" && o != "400 "+mfa.CodeInvalidCode && o != "429 "+mfa.CodeTooManyAttempts {
				t.Fatalf("%d answers %s: %v", n, o, outcomes)
			}
		}
		n1, n2 := commandsRun(t, w1, mfa.CmdVerify), commandsRun(t, w2, mfa.CmdVerify)
		if n1+n2-before != 50 || n1 == 0 || n2 == 0 {
			t.Fatalf("verifications run: worker 1 %d, worker 2 %d (before %d): want 50 spread over both", n1, n2, before)
		}
		t.Logf("outcomes %v; worker 1 ran %d verifications, worker 2 %d", outcomes, n1, n2)
	})

	t.Run("lockout threshold exact", func(t *testing.T) {
		token := c.token(t, "guesser")
		secret, step := enrol(t, c, base, token)
		wrong := totpCode(t, secret, step+1)
		wrong = fmt.Sprintf("%06d", (mustAtoi(t, wrong)+1)%1_000_000)
		outcomes := verifyAtOnce(t, c, base, token, wrong, 20)
		if outcomes["400 "+mfa.CodeInvalidCode] != 5 || outcomes["429 "+mfa.CodeTooManyAttempts] != 15 {
			t.Fatalf("20 wrong codes at once under a threshold of 5: %v", outcomes)
		}
		s := d.store()
		failed := 0
		for _, r := range readAuditPG(t, s) {
			if r.user == "guesser" && r.typ == mfa.EventVerifyFailed {
				failed++
			}
		}
		if failed != 5 {
			t.Fatalf("%d %s events for 20 wrong codes under a threshold of 5", failed, mfa.EventVerifyFailed)
		}
	})
}

// TestPostgresReadsSeeTheOtherWorkersWrites: reads spread over two workers see a write
// whichever worker made it. The read cache is SQLite's alone, where one process writes;
// a worker on PostgreSQL that kept answers would serve what it read before the other
// worker's write.
func TestPostgresReadsSeeTheOtherWorkersWrites(t *testing.T) {
	srv := pgtest.Shared(t)
	d := newPGDeployment(t, srv.NewDatabase(t))
	w1 := d.worker("mfad worker 1")
	w2 := d.worker("mfad worker 2")
	base := baseURL(d.api("mfad api"))
	c := newAPIClient(pgSecret, 20*time.Second)
	token := c.token(t, "reader")

	before := commandsRun(t, w1, mfa.CmdStatus) + commandsRun(t, w2, mfa.CmdStatus)
	for devices := 1; devices <= 4; devices++ {
		enrol(t, c, base, token) // a write, on either worker
		for range 20 {
			a, err := c.do(http.MethodGet, base+"/api/v1/mfa/status", token, "")
			if err != nil || a.status != http.StatusOK {
				t.Fatalf("status: %v %d %s", err, a.status, a.raw)
			}
			if got, _ := get(a.body, "data", "methods").([]any); len(got) != devices {
				t.Fatalf("status after %d devices enrolled lists %d: %s", devices, len(got), a.raw)
			}
		}
	}
	n1, n2 := commandsRun(t, w1, mfa.CmdStatus), commandsRun(t, w2, mfa.CmdStatus)
	if n1+n2-before != 80 || n1 == 0 || n2 == 0 {
		t.Fatalf("status reads run: worker 1 %d, worker 2 %d (before %d): want 80 spread over both", n1, n2, before)
	}
	for _, w := range []*process{w1, w2} {
		if m := getText(t, debugURL(t, w)+"/metrics"); strings.Contains(m, "mfad_read_cache_lookups_total") {
			t.Fatalf("%s keeps a read cache on PostgreSQL", w.name)
		}
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPostgresFailover: the database is a primary with a synchronous standby
// (streaming replication, both local); two workers and an API node reach it through a
// multi-host URL with target_session_attrs=read-write. Under load the primary is
// killed with SIGKILL (it and all its backends, as a host dies), and after a gap the
// standby is promoted. Then
//   - no request was answered 500: in the gap, commands are answered 503 and resent
//     with their Idempotency-Key, as a client would;
//   - the workers found the new primary by themselves, through the URL;
//   - no acknowledged change and no event of one was lost: every write answered 200
//     has its audit record on the new primary, MFA_EVENTS equals the audit log, once
//     each, in order, and the chain verifies.
func TestPostgresFailover(t *testing.T) {
	pgtest.Require(t)
	ctx := context.Background()
	began := time.Now()
	primary, err := pgtest.Start(pgtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { primary.Stop() })
	db, err := primary.CreateDatabase(ctx, "failover")
	if err != nil {
		t.Fatal(err)
	}
	standby, err := primary.StartStandby("standby1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { standby.Stop() })
	if err := primary.Reconfigure(map[string]string{"synchronous_standby_names": "'standby1'"}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := primary.WaitSynchronous(wctx, "standby1"); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/%s?sslmode=disable&target_session_attrs=read-write",
		primary.Port, standby.Port, db)
	t.Logf("primary and synchronous standby up in %v", time.Since(began).Round(time.Millisecond))
	d := newPGDeployment(t, url)
	workers := []*process{d.worker("mfad worker 1"), d.worker("mfad worker 2")}
	api := d.api("mfad api")
	t.Logf("mfad up after %v", time.Since(began).Round(time.Millisecond))

	drv := &loadDriver{t: t, client: newAPIClient(pgSecret, 20*time.Second), bases: []string{baseURL(api)}, giveUp: 60 * time.Second}
	stop := make(chan struct{})
	wait := drv.run(12, "fo", stop)
	const phase = 150
	pollUntil(t, 90*time.Second, "traffic on the primary", func() bool { return drv.ok.Load() >= phase || drv.failing() })
	drv.report()
	t.Logf("traffic after %v", time.Since(began).Round(time.Millisecond))
	if err := primary.Kill9(); err != nil {
		t.Fatal(err)
	}
	killedAt := drv.ok.Load()
	// The gap: no primary. Requests keep coming and must be answered 503.
	time.Sleep(2 * time.Second)
	if err := standby.Promote(); err != nil {
		t.Fatal(err)
	}
	promoted := time.Now()
	t.Logf("primary killed after %d answered operations; standby promoted 2s later", killedAt)
	pollUntil(t, 90*time.Second, "traffic on the new primary", func() bool { return drv.ok.Load() >= killedAt+phase || drv.failing() })
	t.Logf("%d operations answered on the new primary %v after its promotion", phase, time.Since(promoted).Round(time.Millisecond))
	close(stop)
	wait()
	drv.report()
	if drv.unavailable.Load() == 0 {
		t.Fatal("no request was answered 503 during the failover: the gap was not exercised")
	}
	t.Logf("%d operations answered; %d answers in the gap were 503 and resent", drv.ok.Load(), drv.unavailable.Load())

	s := d.store()
	d.drained(s, 60*time.Second)
	t.Logf("outbox drained %v after the promotion", time.Since(promoted).Round(time.Millisecond))
	rows := readAuditPG(t, s)
	checkEventsMatchAudit(t, readEvents(t, d.js), rows)
	checkOpsHaveEvents(t, drv.ops, rows, true)
	api.stopCleanly()
	for _, w := range workers {
		w.stopCleanly()
	}
	verifyPG(t, url, len(rows))
}

// TestStoreCopyThenServe: growing from embedded to PostgreSQL. mfad runs on SQLite
// (the default) while users work; it stops; `mfad store copy` moves the data dir's
// database into an empty PostgreSQL database and verifies the copied chain; a second
// copy into it is refused; `mfad audit verify --database-url` agrees; mfad serves from
// PostgreSQL with the same keys: a device enrolled before signs in, the audit log and
// MFA_EVENTS go on where they were, and /readyz names the database and the relay lease
// holder.
func TestStoreCopyThenServe(t *testing.T) {
	srv := pgtest.Shared(t)
	dataDir := t.TempDir()
	env := []string{"MFAD_DATA_DIR=" + dataDir, "MFAD_HTTP_ADDR=127.0.0.1:0", "MFAD_NATS_LISTEN=127.0.0.1:0",
		"MFAD_JWT_SECRET=" + pgSecret}
	p := startMFAD(t, "mfad on SQLite", env...)
	c := newAPIClient(pgSecret, 20*time.Second)
	kept := c.token(t, "kept")
	secret, step := enrol(t, c, baseURL(p), kept)
	if a, err := c.do(http.MethodPost, baseURL(p)+"/api/v1/mfa/totp/setup", c.token(t, "halfway"), `{"device_name":"pending"}`); err != nil || a.status != http.StatusOK {
		t.Fatalf("a setup left pending: %v %d %s", err, a.status, a.raw)
	}
	drv := &loadDriver{t: t, client: c, bases: []string{baseURL(p)}, giveUp: 20 * time.Second}
	stop := make(chan struct{})
	wait := drv.run(4, "copy", stop)
	pollUntil(t, 60*time.Second, "traffic on SQLite", func() bool { return drv.ok.Load() >= 40 || drv.failing() })
	close(stop)
	wait()
	drv.report()
	p.stopCleanly()

	run := func(args ...string) (string, error) {
		cmd := exec.Command(mfadBinary(t), args...)
		cmd.Env = cleanEnv()
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		return out.String() + errOut.String(), err
	}
	out, err := run("audit", "verify", "--data-dir", dataDir)
	if err != nil {
		t.Fatalf("audit verify of the SQLite database: %v %s", err, out)
	}
	url := srv.NewDatabase(t)
	if out, err := run("store", "copy", "--data-dir", dataDir, "--to", url); err != nil ||
		!strings.Contains(out, "ok: copied to ") || !strings.Contains(out, "the audit chain verifies") {
		t.Fatalf("mfad store copy: %v\n%s", err, out)
	} else {
		t.Logf("mfad store copy:\n%s", out)
	}
	if out, err := run("store", "copy", "--data-dir", dataDir, "--to", url); err == nil || !strings.Contains(out, "not empty") {
		t.Fatalf("a second copy into the same database: %v\n%s", err, out)
	}
	// The same records verify in PostgreSQL (the key is the data dir's audit.key).
	if pgOut, err := run("audit", "verify", "--data-dir", dataDir, "--database-url", url); err != nil || pgOut != out {
		t.Fatalf("audit verify on PostgreSQL: %v %q, on SQLite %q", err, pgOut, out)
	}

	p = startMFAD(t, "mfad on PostgreSQL", append(env, "MFAD_DATABASE_URL="+url)...)
	base := baseURL(p)
	a, err := c.do(http.MethodPost, base+"/api/v1/mfa/verify", kept, fmt.Sprintf(`{"code":%q}`, totpCode(t, secret, step+1)))
	if err != nil || a.status != http.StatusOK || get(a.body, "data", "verified") != true {
		t.Fatalf("sign-in with a device enrolled before the copy: %v %d %s", err, a.status, a.raw)
	}
	checkReady(t, base, []string{"nats", "database", "outbox"})
	ready := httpGet(t, base+"/readyz", "")
	if get(ready.body, "details", "database") != postgres.Describe(url) ||
		!strings.Contains(fmt.Sprint(get(ready.body, "details", "outbox")), "(this process)") {
		pollUntil(t, 10*time.Second, "the relay lease", func() bool {
			ready = httpGet(t, base+"/readyz", "")
			return strings.Contains(fmt.Sprint(get(ready.body, "details", "outbox")), "(this process)")
		})
		if get(ready.body, "details", "database") != postgres.Describe(url) {
			t.Fatalf("/readyz details: %s", ready.raw)
		}
	}
	drv.bases = []string{base}
	stop = make(chan struct{})
	wait = drv.run(4, "after", stop)
	pollUntil(t, 60*time.Second, "traffic on PostgreSQL", func() bool { return drv.ok.Load() >= 80 || drv.failing() })
	close(stop)
	wait()
	drv.report()

	nl := p.waitLog("embedded NATS listening")
	addr, _ := nl["addr"].(string)
	js, _, err := activity.OpenStream(context.Background(), natstest.Connect(t, natsURLOf(t, dataDir, addr, "auditor")),
		activity.EventsStream, activity.DomainAuto)
	if err != nil {
		t.Fatal(err)
	}
	d := &pgDeployment{t: t, url: url, js: js}
	key, err := readKey(dataDir + "/" + auditKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	chain, _ := audit.NewChain(key)
	s, err := postgres.Open(context.Background(), url, chain, postgres.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d.drained(s, 30*time.Second)
	rows := readAuditPG(t, s)
	checkEventsMatchAudit(t, readEvents(t, js), rows)
	// Not allAnswered: the two setups above were made outside the driver.
	checkOpsHaveEvents(t, drv.ops, rows, false)
	p.stopCleanly()
}

// verifyAtOnce submits code n times at once as the holder of token and counts the
// answers by status and error code ("OK" for a success).
func verifyAtOnce(t *testing.T, c *apiClient, base, token, code string, n int) map[string]int {
	t.Helper()
	answers := make([]answer, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			a, err := c.do(http.MethodPost, base+"/api/v1/mfa/verify", token, fmt.Sprintf(`{"code":%q}`, code))
			if err != nil {
				t.Error(err)
			}
			answers[i] = a
		})
	}
	close(start)
	wg.Wait()
	outcomes := map[string]int{}
	for _, a := range answers {
		if a.body["success"] == true {
			outcomes["OK"]++
			continue
		}
		s, _ := get(a.body, "error", "code").(string)
		outcomes[fmt.Sprintf("%d %s", a.status, s)]++
	}
	return outcomes
}
