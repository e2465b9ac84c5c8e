package channels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
)

// Config is the policy and tuning of a worker.
type Config struct {
	TOTP             TOTPPolicy
	MaxTOTPDevices   int           // verified devices per user
	LockoutThreshold int           // consecutive failures that start a lock
	LockoutDuration  time.Duration // how long a lock lasts
	// CodeSendLimit codes at most are sent to a user's SMS/e-mail channels per
	// CodeSendWindow: every code is a message someone pays for.
	CodeSendLimit  int
	CodeSendWindow time.Duration
	Mandatory      map[string]map[mfa.Kind]bool // entry point → channel kinds it makes mandatory

	// Group commit: up to BatchSize write commands share one transaction (one fsync),
	// each inside its own savepoint. BatchSize 1 commits every command on its own.
	BatchSize int
	// BatchWait is how long the writer waits for more commands when the queue runs dry
	// before it commits a partial batch. Zero commits as soon as the queue is empty:
	// commands that arrive during a commit form the next batch by themselves.
	BatchWait time.Duration

	ReadConcurrency int              // read commands run at once
	Now             func() time.Time // the clock; tests move it
	Version         string           // reported by the micro service
	Logger          *slog.Logger
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
	if c.LockoutThreshold <= 0 {
		c.LockoutThreshold = 5
	}
	if c.LockoutDuration <= 0 {
		c.LockoutDuration = 5 * time.Minute
	}
	if c.CodeSendLimit <= 0 {
		c.CodeSendLimit = 5
	}
	if c.CodeSendWindow <= 0 {
		c.CodeSendWindow = 15 * time.Minute
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 128
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

// handlerFunc runs one command in tx. A *mfa.Error result is a domain outcome: what the
// command wrote is kept (a failed code check must still count) and the reply carries
// the code. Any other error is a fault: the command's writes are rolled back.
type handlerFunc func(ctx context.Context, tx *dbTx, c *call) (any, error)

type route struct {
	fn   handlerFunc
	msg  string // catalogue key of the success message
	read bool
	// faultCode replaces INTERNAL_ERROR in the reply to a fault (DEVICE_REMOVE_ERROR).
	faultCode string
}

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

// Worker runs commands against the store. It is safe for concurrent use.
type Worker struct {
	cfg     Config
	store   *Store
	sealer  *Sealer
	log     *slog.Logger
	routes  map[string]route
	metrics *workerMetrics

	// ctx is the worker's lifetime context, used for database work that must not be
	// cut short by the caller going away (a batch commits or not as a whole).
	ctx   context.Context
	stop  context.CancelFunc
	queue chan *job
	reads chan struct{} // semaphore of read commands

	mu      sync.RWMutex // guards closed against sends on queue
	closed  bool
	running sync.WaitGroup // the writer and read commands in flight
	relays  sync.WaitGroup // the notification relay
	svc     micro.Service

	js         jetstream.JetStream // notification relay; nil until Start
	notifyKick chan struct{}
	notifyStop context.CancelFunc
	unreadable sync.Map // ids of queued notifications already reported unopenable
	stopSweep  context.CancelFunc

	writeStmts, readStmts *stmtCache
}

// job is one write command waiting for the writer.
type job struct {
	cmd     *mfa.Command
	route   route
	respond func(mfa.Reply)
}

// NewWorker returns a worker over store; Start puts it on NATS, Do runs a command
// directly.
func NewWorker(cfg Config, store *Store, sealer *Sealer) (*Worker, error) {
	cfg.setDefaults()
	if err := checkKey(context.Background(), store, sealer); err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	w := &Worker{
		cfg:    cfg,
		store:  store,
		sealer: sealer,
		log:    cfg.Logger,
		ctx:    ctx,
		stop:   stop,
		queue:  make(chan *job, 4*cfg.BatchSize),
		reads:  make(chan struct{}, cfg.ReadConcurrency),

		notifyKick: make(chan struct{}, 1),
		notifyStop: func() {},
		writeStmts: newStmtCache(store.write),
		readStmts:  newStmtCache(store.read),
	}
	w.routes = w.commandRoutes()
	w.metrics = newWorkerMetrics(cfg.Metrics, w)
	w.running.Add(1)
	go w.writeLoop()
	sweepCtx, stopSweep := context.WithCancel(ctx)
	w.stopSweep = stopSweep
	w.relays.Add(1)
	go w.sweeper(sweepCtx)
	return w, nil
}

// Start registers the "mfa" micro service on nc: one endpoint per command type under
// mfa.cmd.>, in queue group mfa-workers so any number of workers share the load. It also
// starts the relay of the notification outbox to MFA_NOTIFY.
func (w *Worker) Start(nc *nats.Conn) error {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("jetstream for notifications: %w", err)
	}
	w.js = js
	nctx, stop := context.WithCancel(w.ctx)
	w.notifyStop = stop
	w.relays.Add(1)
	go w.notifyRelay(nctx)
	svc, err := micro.AddService(nc, micro.Config{
		Name:        activity.ServiceName,
		Version:     w.cfg.Version,
		Description: "mfad command workers: MFA factors, lockout, audit",
		QueueGroup:  activity.QueueGroup,
	})
	if err != nil {
		return fmt.Errorf("add micro service: %w", err)
	}
	for typ := range w.routes {
		err := svc.AddEndpoint(activity.EndpointName(typ), w.endpoint(typ),
			micro.WithEndpointSubject(activity.CommandSubject(typ)))
		if err != nil {
			_ = svc.Stop()
			return fmt.Errorf("add endpoint %s: %w", typ, err)
		}
	}
	w.svc = svc
	return nil
}

// endpoint adapts a micro request to Do. nats.go runs a subscription's callback for one
// message at a time, so the callback only hands the command on; the reply is sent
// when its transaction is done.
func (w *Worker) endpoint(typ string) micro.Handler {
	return micro.HandlerFunc(func(req micro.Request) {
		respond := func(r mfa.Reply) {
			body, err := json.Marshal(r)
			if err == nil {
				err = req.Respond(body)
			}
			if err != nil {
				w.log.Warn("reply to command", "type", typ, "err", err)
			}
		}
		var cmd mfa.Command
		if err := json.Unmarshal(req.Data(), &cmd); err != nil {
			respond(mfa.ErrorReply(mfa.Malformed("command", mfa.ReasonSyntax), mfa.LangEnglish))
			return
		}
		cmd.Type = typ // the subject decides, not the body
		w.submit(&cmd, respond)
	})
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

func (w *Worker) submit(cmd *mfa.Command, respond func(mfa.Reply)) {
	rt, ok := w.routes[cmd.Type]
	switch {
	case !ok:
		respond(mfa.ErrorReply(&mfa.Error{Code: mfa.CodeNotFound}, cmd.Lang))
		return
	case cmd.UserID == "":
		respond(mfa.ErrorReply(mfa.Invalid("user_id", mfa.ReasonRequired), cmd.Lang))
		return
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		respond(mfa.ErrorReply(&mfa.Error{Code: mfa.CodeUnavailable, RetryAfter: time.Second}, cmd.Lang))
		return
	}
	if rt.read {
		w.running.Add(1)
		w.reads <- struct{}{}
		go func() {
			defer func() { <-w.reads; w.running.Done() }()
			start := time.Now()
			reply := w.runRead(cmd, rt)
			w.metrics.command(cmd.Type, reply, start)
			respond(reply)
		}()
		return
	}
	w.queue <- &job{cmd: cmd, route: rt, respond: respond}
}

// runRead runs a read command on the read pool.
func (w *Worker) runRead(cmd *mfa.Command, rt route) mfa.Reply {
	c := &call{cmd: cmd, now: w.cfg.Now()}
	// Stop waits for running reads before it cancels w.ctx, so a read never sees it
	// end; without a Done channel go-sqlite3 steps rows on this goroutine (see commitBatch).
	ctx := context.WithoutCancel(w.ctx)
	raw, err := w.store.read.BeginTx(ctx, nil)
	if err != nil {
		return w.reply(c, rt, nil, fmt.Errorf("begin read: %w", err))
	}
	data, err := rt.fn(ctx, &dbTx{Tx: raw, stmts: w.readStmts}, c)
	_ = raw.Rollback() // read only: nothing to keep
	w.readStmts.prepareMissing(ctx)
	return w.reply(c, rt, data, err)
}

// reply turns a handler's result into the reply sent back.
func (w *Worker) reply(c *call, rt route, data any, err error) mfa.Reply {
	if err != nil {
		if outcome := mfa.AsError(err); outcome != nil {
			return mfa.ErrorReply(outcome, c.cmd.Lang)
		}
		w.log.Error("command failed", "type", c.cmd.Type, "command_id", c.cmd.ID,
			"request_id", c.cmd.RequestID, "err", err)
		code := rt.faultCode
		if code == "" {
			code = mfa.CodeInternal
		}
		return mfa.ErrorReply(&mfa.Error{Code: code}, c.cmd.Lang)
	}
	msg := rt.msg
	if c.msg != "" {
		msg = c.msg
	}
	r := mfa.Reply{OK: true, Message: mfa.Text(c.cmd.Lang, msg)}
	if data != nil {
		raw, err := json.Marshal(data)
		if err != nil {
			w.log.Error("encode reply", "type", c.cmd.Type, "err", err)
			return mfa.ErrorReply(&mfa.Error{Code: mfa.CodeInternal}, c.cmd.Lang)
		}
		r.Data = raw
	}
	return r
}

// Stop stops taking commands, finishes the ones already taken (their replies go out)
// and returns when the writer is idle. The store stays open.
func (w *Worker) Stop(ctx context.Context) error {
	w.stopSweep()
	var err error
	if w.svc != nil {
		err = w.svc.Stop()
		// Stop drains the endpoint subscriptions asynchronously; requests already
		// delivered still reach submit, which answers them or, once closed, refuses
		// them with SERVICE_UNAVAILABLE so the caller retries elsewhere.
		w.quiesce(ctx)
	}
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
	done := make(chan struct{})
	go func() { w.running.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.Join(err, fmt.Errorf("stop worker: %w", ctx.Err()))
	}
	// The last commits may have queued notifications: hand them over before leaving.
	if ferr := w.flushNotifications(ctx); ferr != nil {
		err = errors.Join(err, fmt.Errorf("flush notifications: %w", ferr))
	}
	w.notifyStop()
	w.relays.Wait()
	w.writeStmts.close()
	w.readStmts.close()
	w.stop()
	return err
}

// quiesce waits briefly for requests the draining subscriptions still deliver.
func (w *Worker) quiesce(ctx context.Context) {
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
