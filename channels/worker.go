package channels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	mfa "github.com/mfad/mfad"
)

// Config is the policy and tuning of a worker.
type Config struct {
	TOTP           TOTPPolicy
	MaxTOTPDevices int // verified devices per user
	Lockout        LockoutPolicy
	// CodeSendLimit codes at most are sent to a user's SMS/e-mail channels per
	// CodeSendWindow: every code is a message someone pays for.
	CodeSendLimit  int
	CodeSendWindow time.Duration
	Mandatory      map[string]map[mfa.Kind]bool // entry point → channel kinds it makes mandatory
	WebAuthn       WebAuthnPolicy

	// Group commit: up to BatchSize write commands share one transaction (one fsync).
	// BatchSize 1 commits every command on its own.
	BatchSize int
	// BatchWait is how long the writer waits for more commands when the queue runs dry
	// before it commits a partial batch. Zero commits as soon as the queue is empty:
	// commands that arrive during a commit form the next batch by themselves.
	BatchWait time.Duration
	// Pipelines is how many batchers write at once, each with its own transactions,
	// commands shared among them by user so that a user's commands keep their order.
	// One for a store with a single writer (SQLite); a few for a store whose
	// transactions run in parallel (PostgreSQL), so one batch's commit round trip and
	// fsync overlap another's rules. Default 1.
	Pipelines int

	ReadConcurrency int // read commands run at once
	// ReadCacheBytes bounds the answers of cacheable reads (status, device lists,
	// backup-code counts) a worker keeps until their user's next write; 0 or less keeps
	// none. Set it only when this worker is its store's one writer (readCache says why).
	ReadCacheBytes int
	Now            func() time.Time // the clock; tests move it
	Version        string           // reported by the micro service
	Logger         *slog.Logger
	// AfterCommit is called after every commit that appended audit records, to wake
	// the outbox relay. It must not block.
	AfterCommit func()
	// Metrics receives the worker's series (commands, group commits, lockouts,
	// verifications); nil records none.
	Metrics prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.TOTP == (TOTPPolicy{}) {
		c.TOTP = DefaultTOTPPolicy
	}
	if c.MaxTOTPDevices <= 0 {
		c.MaxTOTPDevices = 5
	}
	c.Lockout.setDefaults()
	c.WebAuthn.setDefaults()
	if c.CodeSendLimit <= 0 {
		c.CodeSendLimit = 5
	}
	if c.CodeSendWindow <= 0 {
		c.CodeSendWindow = 15 * time.Minute
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 128
	}
	if c.Pipelines <= 0 {
		c.Pipelines = 1
	}
	if c.ReadConcurrency <= 0 {
		c.ReadConcurrency = 4 * runtime.GOMAXPROCS(0)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Version == "" {
		c.Version = "0.0.0"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.AfterCommit == nil {
		c.AfterCommit = func() {}
	}
}

// Worker runs commands against a store: reads on the store's read transactions, writes
// through the batcher (group commit). Start puts it on NATS; Do runs a command directly.
// It is safe for concurrent use.
type Worker struct {
	cfg     Config
	rules   *rules
	routes  map[string]route
	store   Store
	log     *slog.Logger
	metrics *workerMetrics
	cache   *readCache // nil: every read goes to the store

	batchers []*batcher     // write pipelines, by user (pipeline)
	reads    chan readJob   // to the readers; closed by Stop
	readers  sync.WaitGroup // the reader goroutines

	mu     sync.RWMutex // guards closed against sends to the batcher
	closed bool

	service  *service  // the micro service; nil until Start
	notifier *notifier // the notification relay; nil until Start
	sweeper  *sweeper
}

// NewWorker returns a worker over store. It refuses to start when sealer's keys cannot
// open what the store holds. Its readers, batchers and sweeper run until Stop.
func NewWorker(cfg Config, store Store, sealer *Sealer) (*Worker, error) {
	cfg.setDefaults()
	if err := checkKey(context.Background(), store, sealer); err != nil {
		return nil, err
	}
	wa, err := cfg.WebAuthn.relyingParty()
	if err != nil {
		return nil, err
	}
	r := &rules{cfg: cfg, sealer: sealer, log: cfg.Logger, wa: wa}
	w := &Worker{
		cfg:    cfg,
		rules:  r,
		routes: r.routes(),
		store:  store,
		log:    cfg.Logger,
		reads:  make(chan readJob),
	}
	for range cfg.ReadConcurrency {
		w.readers.Go(w.reader)
	}
	for range cfg.Pipelines {
		w.batchers = append(w.batchers, newBatcher(store, cfg.BatchSize, cfg.BatchWait, w.log, w.begin, w.runWrite, w.finish))
	}
	w.metrics = newWorkerMetrics(cfg.Metrics, w.routes, w.queued)
	w.cache = newReadCache(cfg.ReadCacheBytes, cfg.Metrics)
	w.sweeper = startSweeper(sweepInterval, w.enqueueSweep, w.log)
	return w, nil
}

// Start registers the "mfa" micro service on nc and starts the relay of the
// notification outbox to MFA_NOTIFY.
func (w *Worker) Start(nc *nats.Conn) error {
	n, err := startNotifier(nc, w.store, w.rules.sealer, w.log)
	if err != nil {
		return err
	}
	w.notifier = n
	svc, err := startService(nc, w.cfg.Version, w.routes, w.submit, w.log)
	if err != nil {
		return err
	}
	w.service = svc
	return nil
}

// Do runs cmd and waits for its reply.
func (w *Worker) Do(ctx context.Context, cmd mfa.Command) (mfa.Reply, error) {
	done := make(chan mfa.Reply, 1)
	w.submit(&cmd, func(r mfa.Reply) { done <- r })
	select {
	case r := <-done:
		return r, nil
	case <-ctx.Done():
		return mfa.Reply{}, ctx.Err()
	}
}

// submit runs a command: a read at once on the read pool, a write through the batcher.
// respond gets the reply once the command's transaction is over.
func (w *Worker) submit(cmd *mfa.Command, respond func(mfa.Reply)) {
	rt, ok := w.routes[cmd.Type]
	switch {
	case !ok:
		respond(mfa.ErrorReply(&mfa.Error{Code: mfa.CodeNotFound}, cmd.Lang))
		return
	case cmd.UserID == "":
		respond(mfa.ErrorReply(mfa.Invalid("user_id", mfa.ReasonRequired), cmd.Lang))
		return
	case !mfa.ValidUserID(cmd.UserID):
		// The API checks this; a command published on NATS by another client must meet
		// the same rule (a NUL would also fail a PostgreSQL batch's shared statements).
		respond(mfa.ErrorReply(mfa.Invalid("user_id", mfa.ReasonFormat), cmd.Lang))
		return
	case cmd.ID == "" || cmd.Actor == "":
		// Every entry point names the command and who asks; a message without them is
		// not a command (an event delivered here by a misconfigured consumer, say).
		respond(mfa.ErrorReply(mfa.Invalid("command", mfa.ReasonRequired), cmd.Lang))
		return
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		respond(unavailableReply(cmd.Lang))
		return
	}
	if rt.read {
		var ticket readTicket
		if rt.cache != "" && w.cache != nil {
			start := time.Now()
			data, ok, t := w.cache.get(cmd.UserID, rt.cache)
			if ok {
				reply := okReply(cmd.Lang, rt.msg, data)
				w.metrics.command(cmd.Type, reply, start)
				respond(reply)
				return
			}
			ticket = t
		}
		// Waits for a free reader: as many reads run at once as there are readers.
		w.reads <- readJob{cmd: cmd, route: rt, respond: respond, ticket: ticket}
		return
	}
	w.pipeline(cmd.UserID).enqueue(&job{cmd: cmd, route: rt, respond: respond, queued: time.Now()})
}

// pipeline is the batcher of a user's commands: always the same one, so a user's
// commands run in the order they came.
func (w *Worker) pipeline(userID string) *batcher {
	if len(w.batchers) == 1 {
		return w.batchers[0]
	}
	h := fnv.New32a()
	h.Write([]byte(userID))
	return w.batchers[h.Sum32()%uint32(len(w.batchers))]
}

// queued is the number of write commands waiting in every pipeline.
func (w *Worker) queued() int {
	n := 0
	for _, b := range w.batchers {
		n += b.queued()
	}
	return n
}

// enqueueSweep queues a sweep like a command, so that it runs between batches, in
// order with everything else. It reports false when the worker has stopped.
func (w *Worker) enqueueSweep(respond func(mfa.Reply)) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return false
	}
	cmd := &mfa.Command{ID: mfa.NewID(), Type: "sweep", UserID: "", Actor: "mfad"}
	w.batchers[0].enqueue(&job{cmd: cmd, route: route{fn: w.rules.sweep, keepsReads: true}, respond: respond})
	return true
}

// readJob is one read command waiting for a reader.
type readJob struct {
	cmd     *mfa.Command
	route   route
	respond func(mfa.Reply)
	ticket  readTicket // the cache missed: keep the answer with it
}

// reader runs read commands until Stop closes the queue. Readers live as long as the
// worker, not one goroutine a command: a read's call chain (database/sql, cgo) needs
// a larger stack than a new goroutine has, and growing it on every read cost 5 % of a
// status request's CPU (BENCHMARKS.md).
func (w *Worker) reader() {
	for j := range w.reads {
		start := time.Now()
		reply := w.runRead(j.cmd, j.route, j.ticket)
		w.metrics.command(j.cmd.Type, reply, start)
		j.respond(reply)
	}
}

// runRead runs a read command in a read transaction, and keeps its answer in the cache
// when ticket is a miss's.
func (w *Worker) runRead(cmd *mfa.Command, rt route, ticket readTicket) mfa.Reply {
	c := &call{cmd: cmd, now: w.cfg.Now()}
	var (
		data any
		ferr error
	)
	err := w.store.Read(context.Background(), func(ctx context.Context, tx Tx) error {
		data, ferr = rt.fn(ctx, tx, c)
		return nil
	})
	if err == nil {
		err = ferr
	}
	reply := w.rules.reply(c, rt, data, err)
	if ticket.shard != nil && reply.OK && c.msg == "" && cacheable(data) {
		w.cache.put(ticket, cmd.UserID, rt.cache, reply.Data)
	}
	return reply
}

// runWrite runs one write command in tx: the idempotency key first, then the rules.
// Called once per attempt of its batch.
func (w *Worker) runWrite(ctx context.Context, tx Tx, j *job) outcome {
	c := &call{cmd: j.cmd, now: w.cfg.Now()}
	reply, keep := w.rules.apply(ctx, tx, c, j.route)
	if !keep {
		return outcome{reply: reply, fault: true}
	}
	return outcome{reply: reply, events: c.events, notified: c.notified, counted: c.counted}
}

// begin is the start of a batch: the read cache keeps nothing of its users until
// finish.
func (w *Worker) begin(batch []*job) {
	if w.cache == nil {
		return
	}
	for _, j := range batch {
		if !j.route.keepsReads {
			w.cache.begin(j.cmd.UserID)
		}
	}
}

// finish is the end of a batch: metrics first (a client that has its reply may already
// be reading them), then the replies, then the relays' wake-up calls.
func (w *Worker) finish(batch []*job, outs []outcome, start time.Time, committed time.Duration) {
	var t tallies
	events, notified := 0, 0
	for i, o := range outs {
		t.add(o.counted)
		events += o.events
		notified += o.notified
		if o.counted.lockout() {
			w.log.Warn("user locked out", "user_id", batch[i].cmd.UserID,
				"until", o.counted.lockedUntil.UTC().Format(time.RFC3339), "until_reset", o.counted.untilReset)
		}
	}
	w.metrics.batch(len(batch), committed, &t)
	if w.cache != nil {
		// Before any reply: whoever has a write's answer must not read what was before.
		for _, j := range batch {
			if !j.route.keepsReads {
				w.cache.end(j.cmd.UserID)
			}
		}
	}
	for i, j := range batch {
		w.metrics.queueWait(j.queued, start)
		w.metrics.command(j.cmd.Type, outs[i].reply, start)
	}
	for i, j := range batch {
		j.respond(outs[i].reply)
	}
	if events > 0 {
		w.cfg.AfterCommit()
	}
	if notified > 0 && w.notifier != nil {
		w.notifier.kick()
	}
}

// Stop stops taking commands, finishes the ones already taken (their replies go out),
// hands the last notifications to JetStream and returns when nothing runs any more.
// The store stays open.
func (w *Worker) Stop(ctx context.Context) error {
	w.sweeper.stop()
	var err error
	if w.service != nil {
		err = w.service.stop(ctx)
	}
	w.mu.Lock()
	alreadyClosed := w.closed
	w.closed = true
	w.mu.Unlock()
	if !alreadyClosed {
		close(w.reads)
		for _, b := range w.batchers {
			b.close()
		}
	}
	done := make(chan struct{})
	go func() { w.readers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.Join(err, fmt.Errorf("stop worker: %w", ctx.Err()))
	}
	if w.notifier != nil {
		if nerr := w.notifier.stop(ctx); nerr != nil {
			err = errors.Join(err, fmt.Errorf("flush notifications: %w", nerr))
		}
	}
	return err
}

// route is one command type: its handler and how its reply is made.
type route struct {
	fn   handlerFunc
	msg  string // catalogue key of the success message
	read bool
	// cache is the read cache's key of a read whose answer depends on its user's rows
	// alone, kept until the user's next write; "" keeps nothing. Reads with the same
	// answer share a key.
	cache string
	// keepsReads: a write that changes no kept answer (the sweep deletes only rows
	// every read already ignores), so it leaves the read cache alone.
	keepsReads bool
	// readsUser: the command starts by reading its user and methods (Unit.ReadsUser).
	readsUser bool
	// faultCode replaces INTERNAL_ERROR in the reply to a fault (DEVICE_REMOVE_ERROR).
	faultCode string
}

// handlerFunc runs one command in tx. A *mfa.Error result is a domain outcome: what the
// command wrote is kept (a failed code check must still count) and the reply carries
// the code. Any other error is a fault: the command's writes are rolled back.
type handlerFunc func(ctx context.Context, tx Tx, c *call) (any, error)

// call is one command being run: the command, the instant it runs at, and what it
// produced besides its reply.
type call struct {
	cmd      *mfa.Command
	now      time.Time
	events   int
	notified int
	msg      string  // overrides the route's success message
	counted  counted // what the metrics count once the batch has committed
}

// params decodes the command's parameters into p.
func (c *call) params(p any) error {
	if len(c.cmd.Params) == 0 {
		return nil
	}
	if err := json.Unmarshal(c.cmd.Params, p); err != nil {
		return mfa.Malformed("params", mfa.ReasonSyntax)
	}
	return nil
}

func (rt route) fault() string {
	if rt.faultCode != "" {
		return rt.faultCode
	}
	return mfa.CodeInternal
}
