package main

// Helpers of the black-box tests that run mfad under load (crash_test.go,
// scaleout_test.go): a nats-server cluster of real processes, users driving the device
// dialect over HTTP, and the two records that must agree afterwards, the MFA_EVENTS
// stream and the worker's audit_log.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
)

// pollUntil polls cond every 20ms until it holds, failing the test after limit.
func pollUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill9 ends p with SIGKILL and waits until it is gone.
func (p *process) kill9() {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		p.t.Fatalf("kill %s: %v", p.name, err)
	}
	<-p.done
}

// ---- a nats-server cluster of real processes

type natsNode struct {
	name                 string
	port, route, monitor int // client, cluster and monitoring ports, kept across restarts
	dir                  string
	proc                 *process
}

type natsCluster struct {
	t     *testing.T
	bin   string
	nodes []*natsNode
}

// startNATSCluster starts n nats-server processes (the binary built from the module we
// require) with JetStream, clustered over loopback routes, each with its own store,
// and waits until JetStream answers.
func startNATSCluster(t *testing.T, n int) *natsCluster {
	t.Helper()
	c := &natsCluster{t: t, bin: natsServerBinary(t)}
	ports := freePorts(t, 3*n)
	for i := range n {
		c.nodes = append(c.nodes, &natsNode{name: fmt.Sprint("n", i+1), port: ports[3*i], route: ports[3*i+1],
			monitor: ports[3*i+2], dir: t.TempDir()})
	}
	for i := range c.nodes {
		c.start(i)
	}
	js, err := jetstream.New(c.connect())
	if err != nil {
		t.Fatal(err)
	}
	pollUntil(t, 60*time.Second, "JetStream meta leader", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err == nil
	})
	return c
}

// start starts node i, again after a stop: same name, store and ports.
func (c *natsCluster) start(i int) {
	c.t.Helper()
	n := c.nodes[i]
	var routes []string
	for j, o := range c.nodes {
		if j != i {
			routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", o.route))
		}
	}
	n.proc = startProcess(c.t, "nats-server "+n.name, c.bin, cleanEnv(),
		"-js", "-sd", n.dir, "-a", "127.0.0.1", "-p", strconv.Itoa(n.port), "-m", strconv.Itoa(n.monitor), "-n", n.name,
		"--cluster_name", "mfad-test", "--cluster", fmt.Sprintf("nats://127.0.0.1:%d", n.route),
		"--routes", strings.Join(routes, ","))
	n.proc.waitText("Server is ready")
}

// serving is the index of the node the client connection named name is on (from the
// monitoring endpoint /connz), -1 when no node has it.
func (c *natsCluster) serving(name string) int {
	c.t.Helper()
	for i, n := range c.nodes {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/connz?limit=4096", n.monitor))
		if err != nil {
			continue // down
		}
		var connz struct {
			Connections []struct {
				Name string `json:"name"`
			} `json:"connections"`
		}
		err = json.NewDecoder(resp.Body).Decode(&connz)
		resp.Body.Close()
		if err != nil {
			c.t.Fatalf("connz of %s: %v", n.name, err)
		}
		for _, conn := range connz.Connections {
			if conn.Name == name {
				return i
			}
		}
	}
	return -1
}

// lead makes node i the leader of a stream (a step-down with a preferred successor)
// and waits until it is.
func (c *natsCluster) lead(nc *nats.Conn, js jetstream.JetStream, stream string, i int) {
	c.t.Helper()
	name := c.nodes[i].name
	if info := streamInfo(js, stream); info != nil && info.Cluster != nil && info.Cluster.Leader == name {
		return
	}
	req := fmt.Sprintf(`{"placement":{"preferred":%q}}`, name)
	msg, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, []byte(req), 5*time.Second)
	if err != nil {
		c.t.Fatalf("step down the leader of %s: %v", stream, err)
	}
	var resp struct {
		Success bool `json:"success"`
	}
	if json.Unmarshal(msg.Data, &resp) != nil || !resp.Success {
		c.t.Fatalf("step down the leader of %s: %s", stream, msg.Data)
	}
	pollUntil(c.t, 30*time.Second, name+" leading "+stream, func() bool {
		c.checkWritable()
		info := streamInfo(js, stream)
		return info != nil && info.Cluster != nil && info.Cluster.Leader == name
	})
}

// checkWritable fails the test as soon as a node has logged that a stream stopped
// taking writes. Since nats-server 2.14 an error while a replica applies a stream
// entry is a "critical write error": the replica steps down and turns observer, and
// since every replica applies the same entry, the stream is left without a leader,
// even across server restarts, until an operator repairs it.
func (c *natsCluster) checkWritable() {
	c.t.Helper()
	for _, n := range c.nodes {
		for _, l := range n.proc.output() {
			if strings.Contains(l, "critical write error") {
				c.t.Fatalf("nats-server %s: %s\n(a replicated stream is wedged: see the note on Nats-Expected-Last-Msg-Id in scaleout_test.go)", n.name, l)
			}
		}
	}
}

// url lists every node, as MFAD_NATS_URL does.
func (c *natsCluster) url() string {
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", n.port))
	}
	return strings.Join(urls, ",")
}

// connect opens a test connection to the cluster that reconnects for ever.
func (c *natsCluster) connect() *nats.Conn {
	c.t.Helper()
	nc, err := nats.Connect(c.url(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.Timeout(5*time.Second))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}

// streamInfo is the info of a stream, or nil while it cannot be had (no leader).
func streamInfo(js jetstream.JetStream, name string) *jetstream.StreamInfo {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil
	}
	return info
}

// ---- users of the device dialect

// apiClient sends HTTP requests as the users of the load tests, with tokens signed by
// the HS256 secret the mfad processes share.
type apiClient struct {
	http   *http.Client
	secret []byte
}

func newAPIClient(secret string, timeout time.Duration) *apiClient {
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
	return &apiClient{http: &http.Client{Transport: tr, Timeout: timeout}, secret: []byte(secret)}
}

func (c *apiClient) token(t *testing.T, sub string, scopes ...string) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{"sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "auth_time": now.Unix()}
	if len(scopes) > 0 {
		claims["scope"] = strings.Join(scopes, " ")
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(c.secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// do sends one request. The error is a transport failure (no answer within the client
// timeout included) or an answer that is not a JSON object.
func (c *apiClient) do(method, url, token, body string, headers ...string) (answer, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return answer{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		return a, fmt.Errorf("%d answer is not a JSON object: %q", resp.StatusCode, raw)
	}
	return a, nil
}

// checkUnavailable wants a's answer to be the documented clean failure of the device
// dialect when no worker answers: 503 SERVICE_UNAVAILABLE in the error envelope, with
// Retry-After and X-Request-Id.
func checkUnavailable(a answer) error {
	e, _ := a.body["error"].(map[string]any)
	retry, err := strconv.Atoi(a.header.Get("Retry-After"))
	switch {
	case a.status != http.StatusServiceUnavailable:
		return fmt.Errorf("status %d", a.status)
	case a.body["success"] != false || e == nil || e["code"] != mfa.CodeUnavailable:
		return fmt.Errorf("503 without the device error envelope: %s", a.raw)
	case e["message"] == "" || e["timestamp"] == nil || a.body["message"] == "":
		return fmt.Errorf("503 envelope lacks message or timestamp: %s", a.raw)
	case err != nil || retry < 1:
		return fmt.Errorf("503 with Retry-After %q", a.header.Get("Retry-After"))
	case a.header.Get("X-Request-Id") == "":
		return errors.New("503 without X-Request-Id")
	}
	return nil
}

// Operations of a load cycle, and the event each successful one must leave.
const (
	opSetup  = "setup"
	opVerify = "verify"
	opSignIn = "signin"
	opStatus = "status"
	opRemove = "remove"
)

var opEvent = map[string]string{
	opSetup:  mfa.EventTOTPDeviceSetUp,
	opVerify: mfa.EventTOTPDeviceVerified,
	opSignIn: mfa.EventVerifySucceeded,
	opRemove: mfa.EventTOTPDeviceRemoved,
}

// opResult is one operation of a user: its last attempt, or its answer.
type opResult struct {
	user, op, key string // key: the Idempotency-Key, "" for reads
	method, path  string
	body          string
	device        int64
	answered      bool // a 200 came back
	attempts      int
	unavailable   bool // a 503 came back before the answer
}

// loadUser is one user of a load test. Only its own goroutine touches it.
type loadUser struct {
	id     string
	token  string
	n      int // the user's number: which API node it starts on
	reqs   int // requests sent, to alternate between API nodes
	cycles int
}

// loadDriver runs users through cycles of enrolling a TOTP device (setup and verify),
// signing in with it, reading their status and removing the device, spreading the
// requests of each user over every API node. Writes carry an Idempotency-Key; a 503
// SERVICE_UNAVAILABLE is checked for the documented envelope and resent with the same
// key, as API.md §0 tells clients to. Anything else that is not a 200 is a problem.
type loadDriver struct {
	t      *testing.T
	client *apiClient
	bases  []string // http://host:port of the API nodes
	giveUp time.Duration
	// pace, when set, is the least time a user's cycle takes: it bounds the load, so
	// the events a run produces stay few enough to check quickly.
	pace time.Duration
	// crashed, once set, makes a transport error the end of a user's run rather
	// than a problem: the process was killed on purpose.
	crashed atomic.Bool

	ok, unavailable atomic.Int64

	mu       sync.Mutex
	ops      []opResult
	lost     []opResult // writes that got no answer because of the crash
	problems []string
}

func (d *loadDriver) problem(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.problems) < 50 {
		d.problems = append(d.problems, fmt.Sprintf(format, args...))
	}
}

// run starts users that cycle until stop is closed (each finishes its cycle) and
// returns a function that waits for them.
func (d *loadDriver) run(users int, prefix string, stop <-chan struct{}) (wait func()) {
	var wg sync.WaitGroup
	for i := range users {
		u := &loadUser{id: fmt.Sprintf("%s-%d", prefix, i), n: i}
		u.token = d.client.token(d.t, u.id)
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				next := time.After(d.pace)
				if !d.cycle(u) {
					return
				}
				select {
				case <-stop:
					return
				case <-next:
				}
			}
		})
	}
	return wg.Wait
}

// send runs one operation until it is answered; false when it failed for good.
func (d *loadDriver) send(u *loadUser, r *opResult) (answer, bool) {
	start := time.Now()
	for {
		r.attempts++
		base := d.bases[(u.n+u.reqs)%len(d.bases)]
		u.reqs++
		var headers []string
		if r.key != "" {
			headers = []string{"Idempotency-Key", r.key}
		}
		a, err := d.client.do(r.method, base+r.path, u.token, r.body, headers...)
		switch {
		case err != nil && d.crashed.Load():
			if r.key != "" {
				d.mu.Lock()
				d.lost = append(d.lost, *r)
				d.mu.Unlock()
			}
			return a, false
		case err != nil:
			d.problem("%s %s of %s (attempt %d, after %v): %v", r.method, r.path, u.id, r.attempts, time.Since(start).Round(time.Millisecond), err)
			return a, false
		case a.status == http.StatusOK && a.body["success"] == true:
			d.ok.Add(1)
			r.answered = true
			return a, true
		case a.status == http.StatusBadRequest && r.op == opSignIn && r.unavailable && a.body["error"] != nil &&
			get(a.body, "error", "code") == "INVALID_CODE":
			// Sign-in verification ignores Idempotency-Key on purpose (a replayed success
			// would accept a code twice): after a 503 whose attempt was applied after all,
			// the retry finds the code used. The outcome is unknown, not wrong.
			d.ok.Add(1)
			return a, true
		case a.status == http.StatusServiceUnavailable:
			if err := checkUnavailable(a); err != nil {
				d.problem("%s %s of %s: %v", r.method, r.path, u.id, err)
				return a, false
			}
			r.unavailable = true
			d.unavailable.Add(1)
			if time.Since(start) > d.giveUp {
				d.problem("%s %s of %s: still 503 after %d attempts in %v", r.method, r.path, u.id, r.attempts, d.giveUp)
				return a, false
			}
			time.Sleep(100 * time.Millisecond) // Retry-After says 1s; a test need not wait that long
		default:
			d.problem("%s %s of %s (attempt %d): %d %s", r.method, r.path, u.id, r.attempts, a.status, a.raw)
			return a, false
		}
	}
}

// do runs an operation and records it.
func (d *loadDriver) do(u *loadUser, r opResult) (answer, bool) {
	r.user = u.id
	a, ok := d.send(u, &r)
	if ok && r.op == opSetup {
		id, _ := get(a.body, "data", "device_id").(float64)
		r.device = int64(id)
	}
	d.mu.Lock()
	d.ops = append(d.ops, r)
	d.mu.Unlock()
	return a, ok
}

// cycle is one round of a user; false ends the user's run.
func (d *loadDriver) cycle(u *loadUser) bool {
	c := u.cycles
	u.cycles++
	key := func(op string) string { return fmt.Sprintf("%s-c%d-%s", u.id, c, op) }
	a, ok := d.do(u, opResult{op: opSetup, key: key(opSetup), method: http.MethodPost,
		path: "/api/v1/mfa/totp/setup", body: `{"device_name":"phone"}`})
	if !ok {
		return false
	}
	id, _ := get(a.body, "data", "device_id").(float64)
	secret, _ := get(a.body, "data", "secret").(string)
	dev := int64(id)
	if dev == 0 || secret == "" {
		d.problem("setup of %s: %s", u.id, a.raw)
		return false
	}
	// The setup is verified with the code of the current step, the sign-in with the
	// next one: the server accepts ±1 step and refuses a step at or before the last
	// one the device accepted. Both stay valid for at least 30 s, longer than any
	// retry of the same request (same key, same body) takes.
	step := time.Now().Unix() / 30
	if _, ok := d.do(u, opResult{op: opVerify, key: key(opVerify), device: dev, method: http.MethodPost,
		path: "/api/v1/mfa/totp/verify", body: fmt.Sprintf(`{"code":%q,"device_id":%d}`, totpCode(d.t, secret, step), dev)}); !ok {
		return false
	}
	a, ok = d.do(u, opResult{op: opSignIn, key: key(opSignIn), device: dev, method: http.MethodPost,
		path: "/api/v1/mfa/verify", body: fmt.Sprintf(`{"code":%q}`, totpCode(d.t, secret, step+1))})
	if !ok {
		return false
	}
	if a.status == http.StatusOK && (get(a.body, "data", "verified") != true || get(a.body, "data", "method") != "totp") {
		d.problem("sign-in of %s: %s", u.id, a.raw)
	}
	a, ok = d.do(u, opResult{op: opStatus, device: dev, method: http.MethodGet, path: "/api/v1/mfa/status"})
	if !ok {
		return false
	}
	// A read after the writes were answered sees them, whichever API node it goes to.
	methods, _ := get(a.body, "data", "methods").([]any)
	if get(a.body, "data", "enabled") != true || len(methods) != 1 || get(methods[0], "id") != float64(dev) {
		d.problem("status of %s after enrolling device %d: %s", u.id, dev, a.raw)
	}
	_, ok = d.do(u, opResult{op: opRemove, key: key(opRemove), device: dev, method: http.MethodDelete,
		path: fmt.Sprintf("/api/v1/mfa/totp/devices/%d", dev)})
	return ok
}

// failing says whether a problem was seen.
func (d *loadDriver) failing() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.problems) > 0
}

// report fails the test with the problems seen.
func (d *loadDriver) report() {
	d.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.problems {
		d.t.Error(p)
	}
	if len(d.problems) > 0 {
		d.t.FailNow()
	}
}

// count is the number of answered operations of kind op.
func (d *loadDriver) count(op string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, r := range d.ops {
		if r.op == op && r.answered {
			n++
		}
	}
	return n
}

// get walks a decoded JSON value: get(body, "data", "device_id").
func get(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// totpCode is what an authenticator shows for secret at a time step (mfad's
// defaults: SHA1, 6 digits, 30 s).
func totpCode(t *testing.T, secret string, step int64) string {
	code, err := hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Error(err)
	}
	return code
}

// ---- the audit log and the MFA_EVENTS stream

// auditRecord is an audit_log row as the tests read it back.
type auditRecord struct {
	seq       int64
	eventID   string
	typ       string
	user      string
	body      string
	published bool
	object    string // the event's object.id
}

// openDB opens a worker's SQLite file directly, as an operator's sqlite3 would; a
// running worker may hold it too (WAL).
func openDB(t *testing.T, path string, readOnly bool) *sql.DB {
	t.Helper()
	dsn := "file:" + path + "?_busy_timeout=10000"
	if readOnly {
		dsn += "&mode=ro"
	}
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func readAudit(t *testing.T, db *sql.DB) []auditRecord {
	t.Helper()
	rows, err := db.Query("SELECT seq, event_id, type, user_id, body, published_at IS NOT NULL FROM audit_log ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []auditRecord
	for rows.Next() {
		var r auditRecord
		if err := rows.Scan(&r.seq, &r.eventID, &r.typ, &r.user, &r.body, &r.published); err != nil {
			t.Fatal(err)
		}
		var body struct {
			Object mfa.EventObject `json:"object"`
		}
		if err := json.Unmarshal([]byte(r.body), &body); err != nil {
			t.Fatalf("audit record %d: body %v", r.seq, err)
		}
		r.object = body.Object.ID
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// unpublished counts the rows the relay has not marked published; -1 when the
// database cannot be read at the moment.
func unpublished(db *sql.DB) int {
	var n int
	if err := db.QueryRow("SELECT count(*) FROM audit_log WHERE published_at IS NULL").Scan(&n); err != nil {
		return -1
	}
	return n
}

// integrityOK runs PRAGMA integrity_check.
func integrityOK(t *testing.T, db *sql.DB) {
	t.Helper()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Fatalf("PRAGMA integrity_check: %q %v", res, err)
	}
}

// streamedEvent is one message of MFA_EVENTS.
type streamedEvent struct {
	streamSeq uint64
	subject   string
	msgID     string
	auditSeq  string // Mfa-Seq header
	body      string
}

// readEvents reads every message MFA_EVENTS holds, in stream order.
func readEvents(t *testing.T, js jetstream.JetStream) []streamedEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, activity.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []streamedEvent
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("read MFA_EVENTS message %d: %v", seq, err)
		}
		out = append(out, streamedEvent{m.Sequence, m.Subject, m.Header.Get(jetstream.MsgIDHeader),
			m.Header.Get(activity.EventSeqHeader), string(m.Data)})
	}
	return out
}

// lastEventSeq is the Mfa-Seq of the stream's last message, 0 when there is none or
// it cannot be read now.
func lastEventSeq(js jetstream.JetStream) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, activity.EventsStream)
	if err != nil {
		return 0
	}
	m, err := s.GetLastMsgForSubject(ctx, activity.EventSubjects)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(m.Header.Get(activity.EventSeqHeader), 10, 64)
	return n
}

// checkEventsMatchAudit wants the stream to hold exactly the audit rows: nothing else,
// each once (no duplicate Nats-Msg-Id), in seq order, with the row's subject and body,
// and every row marked published.
func checkEventsMatchAudit(t *testing.T, events []streamedEvent, rows []auditRecord) {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range events {
		if e.auditSeq == "" {
			t.Errorf("stream message %d on %s is not an audit event", e.streamSeq, e.subject)
		}
		if seen[e.msgID] {
			t.Errorf("Nats-Msg-Id %s (Mfa-Seq %s) is in the stream twice", e.msgID, e.auditSeq)
		}
		seen[e.msgID] = true
	}
	if len(events) != len(rows) {
		t.Fatalf("MFA_EVENTS holds %d messages, audit_log %d rows", len(events), len(rows))
	}
	for i, r := range rows {
		e := events[i]
		if e.msgID != r.eventID || e.auditSeq != strconv.FormatInt(r.seq, 10) ||
			e.subject != activity.EventSubject(r.typ) || e.body != r.body {
			t.Fatalf("stream message %d = {%s Mfa-Seq %s %s}, want audit row {%s seq %d %s}",
				e.streamSeq, e.msgID, e.auditSeq, e.subject, r.eventID, r.seq, activity.EventSubject(r.typ))
		}
		if !r.published {
			t.Fatalf("audit row %d is in the stream but not marked published", r.seq)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// checkOpsHaveEvents wants exactly one event of the right type and user for each
// answered write, naming its device, and at most one for a write that got no answer
// (the crash came first; it may or may not have committed). With allAnswered, every
// totp.device_set_up row must also name a device a client was given: no setup was
// applied without its client hearing of it in the end.
func checkOpsHaveEvents(t *testing.T, ops []opResult, rows []auditRecord, allAnswered bool) {
	t.Helper()
	byObject := map[string][]auditRecord{} // type/object id → rows
	for _, r := range rows {
		k := r.typ + "/" + r.object
		byObject[k] = append(byObject[k], r)
	}
	given := map[string]bool{}
	for _, op := range ops {
		typ, ok := opEvent[op.op]
		if !ok || op.device == 0 {
			continue
		}
		id := strconv.FormatInt(op.device, 10)
		if op.op == opSetup {
			given[id] = true
		}
		got := byObject[typ+"/"+id]
		switch {
		case op.answered && len(got) != 1:
			t.Errorf("%s %s of %s (device %s, key %s) was answered 200 and has %d %s events", op.method, op.path, op.user, id, op.key, len(got), typ)
		case len(got) > 1:
			t.Errorf("%s of %s (device %s, key %s) has %d %s events", op.op, op.user, id, op.key, len(got), typ)
		case len(got) == 1 && got[0].user != op.user:
			t.Errorf("%s event of device %s is about user %s, not %s", typ, id, got[0].user, op.user)
		}
	}
	if allAnswered {
		for _, r := range rows {
			if r.typ == mfa.EventTOTPDeviceSetUp && !given[r.object] {
				t.Errorf("audit row %d: device %s of %s was set up but no client was given it", r.seq, r.object, r.user)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// baseURL is the http:// address a process logged it serves on.
func baseURL(p *process) string {
	u := url.URL{Scheme: "http", Host: p.httpAddr()}
	return u.String()
}
