package channels

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
)

// Worker metrics. Everything a command did is counted only once its batch has committed:
// a command rolled back to its savepoint, or a batch whose COMMIT failed, counts
// nothing, so the counters agree with the audit log.

// verifyResult is the result label of mfad_verifications_total; each mirrors an
// audit event type (verify.succeeded, verify.failed, verify.replayed, verify.locked).
type verifyResult uint8

const (
	verifyNone verifyResult = iota
	verifySuccess
	verifyFailure
	verifyReplayed
	verifyLocked
	numVerifyResults
)

var verifyResultLabels = [numVerifyResults]string{"", "success", "failure", "replayed", "locked"}

// verifyMethods are the method label's values: the VerifiedBy* methods, "code" for a
// sign-in code refused before it was known which method it was for, and "other" so
// that no unexpected value becomes a label.
var verifyMethods = [...]string{
	mfa.VerifiedByTOTP, mfa.VerifiedBySMS, mfa.VerifiedByEmail, mfa.VerifiedByBackupCode, mfa.VerifiedByWebAuthn, "code", "other",
}

func methodIndex(m string) int {
	for i, v := range verifyMethods[:len(verifyMethods)-1] {
		if v == m {
			return i
		}
	}
	return len(verifyMethods) - 1
}

// counted is what one command did that the metrics (and the lockout log line) count
// after the commit.
type counted struct {
	result      verifyResult
	method      int       // index in verifyMethods
	lockedUntil time.Time // a lock the command started
	untilReset  bool      // the lock lasts until an administrator's reset
}

// verify records the command's code check. A command checks at most one code.
func (k *counted) verify(r verifyResult, method string) {
	k.result, k.method = r, methodIndex(method)
}

// failed records a refused code: wrong, or (replayed) right but already used; until is
// the end of the lock it started, if any.
func (k *counted) failed(replayed bool, method string, until time.Time, untilReset bool) {
	r := verifyFailure
	if replayed {
		r = verifyReplayed
	}
	k.verify(r, method)
	k.lockedUntil, k.untilReset = until, untilReset
}

func (k *counted) lockout() bool { return !k.lockedUntil.IsZero() }

// methodOf reads the method of a failure's audit detail.
func methodOf(detail map[string]any) string {
	switch m := detail["method"].(type) {
	case string:
		return m
	case mfa.Kind:
		return string(m)
	}
	return ""
}

// tallies adds up the counted facts of a batch.
type tallies struct {
	lockouts      int
	verifications [numVerifyResults][len(verifyMethods)]int
}

func (t *tallies) add(k counted) {
	if k.lockout() {
		t.lockouts++
	}
	if k.result != verifyNone {
		t.verifications[k.result][k.method]++
	}
}

// workerMetrics are the worker's series. A nil *workerMetrics records nothing.
type workerMetrics struct {
	duration  map[string]prometheus.Observer // by command type; fixed at NewWorker
	replies   *prometheus.CounterVec         // type, code
	queue     prometheus.Observer
	batchSize prometheus.Observer
	commit    prometheus.Observer
	lockouts  prometheus.Counter
	verified  [numVerifyResults][len(verifyMethods)]prometheus.Counter

	mu    sync.RWMutex
	codes map[replyKey]prometheus.Counter // replies' series, kept: WithLabelValues allocates
}

type replyKey struct{ typ, code string }

// newWorkerMetrics registers the worker's series with reg; nil turns them off. queued
// reports the write commands waiting.
func newWorkerMetrics(reg prometheus.Registerer, routes map[string]route, queued func() int) *workerMetrics {
	if reg == nil {
		return nil
	}
	duration := activity.RegisterMetric(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "mfad_command_duration_seconds",
		Help: "Time from a worker taking a command off its queue to replying, by command type. " +
			"The commands of a group commit share the batch's start and wait for its COMMIT.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"type"}))
	m := &workerMetrics{
		duration: make(map[string]prometheus.Observer, len(routes)),
		replies: activity.RegisterMetric(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mfad_command_replies_total",
			Help: "Commands answered by the workers, by command type and outcome code (OK for success).",
		}, []string{"type", "code"})),
		// A write first waits for the batch in progress, then runs in its own; the
		// duration series starts at its own batch, so it shows only the second part.
		queue: activity.RegisterMetric(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mfad_command_queue_seconds",
			Help: "Time a write command waited for the single writer: from reaching the worker to the start " +
				"of its group commit. It grows when the writer is saturated.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		})),
		batchSize: activity.RegisterMetric(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mfad_group_commit_batch_size",
			Help:    "Write commands per group-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9), // 1 … 256
		})),
		commit: activity.RegisterMetric(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mfad_group_commit_duration_seconds",
			Help:    "Time from BEGIN to COMMIT (one fsync) of a group-commit transaction.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		})),
		lockouts: activity.RegisterMetric(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mfad_lockouts_total",
			Help: "Lockouts started: every LockoutThreshold-th consecutive failed code check of a user.",
		})),
		codes: map[replyKey]prometheus.Counter{},
	}
	for typ := range routes {
		m.duration[typ] = duration.WithLabelValues(typ)
	}
	verifications := activity.RegisterMetric(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mfad_verifications_total",
		Help: "Code checks by result (success, failure, replayed, locked) and method, as the verify.* audit events record them. " +
			"Failures count every code check (setup and channel confirmation too); success counts sign-in verifications.",
	}, []string{"result", "method"}))
	// Every combination exists from the start, at zero, so rate() over a result that
	// has not happened yet is 0 rather than no data.
	for r := verifySuccess; r < numVerifyResults; r++ {
		for i, method := range verifyMethods {
			m.verified[r][i] = verifications.WithLabelValues(verifyResultLabels[r], method)
		}
	}
	activity.RegisterMetric(reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mfad_command_queue_length",
		Help: "Write commands waiting for the single writer.",
	}, func() float64 { return float64(queued()) }))
	return m
}

// queueWait records how long a write command waited between reaching the worker
// (queued) and the start of its batch. A command that came while its batch was
// gathering stragglers (Config.BatchWait) waited for nothing.
func (m *workerMetrics) queueWait(queued, batchStart time.Time) {
	if m == nil || queued.IsZero() {
		return
	}
	m.queue.Observe(max(batchStart.Sub(queued), 0).Seconds())
}

// command records one command's reply and how long it took from start.
func (m *workerMetrics) command(typ string, r mfa.Reply, start time.Time) {
	if m == nil {
		return
	}
	if d, ok := m.duration[typ]; ok {
		d.Observe(time.Since(start).Seconds())
	}
	code := r.Code
	if r.OK {
		code = "OK"
	}
	m.reply(typ, code).Inc()
}

func (m *workerMetrics) reply(typ, code string) prometheus.Counter {
	k := replyKey{typ, code}
	m.mu.RLock()
	c, ok := m.codes[k]
	m.mu.RUnlock()
	if ok {
		return c
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok = m.codes[k]; !ok {
		c = m.replies.WithLabelValues(typ, code)
		m.codes[k] = c
	}
	return c
}

// batch records a group commit of n commands that took d; t is what its commands did
// (zero when the batch failed).
func (m *workerMetrics) batch(n int, d time.Duration, t *tallies) {
	if m == nil {
		return
	}
	m.batchSize.Observe(float64(n))
	m.commit.Observe(d.Seconds())
	if t.lockouts > 0 {
		m.lockouts.Add(float64(t.lockouts))
	}
	for r := verifySuccess; r < numVerifyResults; r++ {
		for i, count := range t.verifications[r] {
			if count > 0 {
				m.verified[r][i].Add(float64(count))
			}
		}
	}
}
