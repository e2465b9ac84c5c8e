package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	l := sorted(ds)
	if l.pct(50) != 50*time.Millisecond || l.pct(99) != 99*time.Millisecond || l.pct(100) != 100*time.Millisecond {
		t.Fatalf("p50 %v p99 %v p100 %v", l.pct(50), l.pct(99), l.pct(100))
	}
	if ds[0] != 100*time.Millisecond {
		t.Fatal("sorted changed its input")
	}
	if sorted(nil).pct(99) != 0 {
		t.Fatal("empty sample")
	}
}

// TestNextStep: a device offers the server only steps it will accept: after its last
// one, within ±1 of now, and the step before now only early in a step.
func TestNextStep(t *testing.T) {
	base := time.Unix(30*1000, 0) // the start of step 1000
	for _, tc := range []struct {
		last   int64
		offset time.Duration
		want   int64
		ok     bool
	}{
		{-1, 5 * time.Second, 999, true},   // early: the previous step is safe
		{-1, 25 * time.Second, 1000, true}, // late: it may not be by the time we arrive
		{999, 5 * time.Second, 1000, true},
		{1000, 5 * time.Second, 1001, true},
		{1001, 5 * time.Second, 1002, false}, // two steps ahead: wait
	} {
		d := &loadDevice{LastStep: tc.last}
		got, ok := d.nextStep(base.Add(tc.offset))
		if got != tc.want || ok != tc.ok {
			t.Errorf("last %d at +%v: %d %v, want %d %v", tc.last, tc.offset, got, ok, tc.want, tc.ok)
		}
	}
}

// TestEventWatchPairsRepliesAndEvents in either order, counts duplicates and missing.
func TestEventWatchPairsRepliesAndEvents(t *testing.T) {
	w := &eventWatch{}
	w.reset()
	t0 := time.Now()
	w.expect("totp.device_removed|7", t0)
	w.observe(eventRecord{ID: "e1", Event: "totp.device_removed", Object: struct {
		ID string `json:"id"`
	}{"7"}}, t0.Add(3*time.Millisecond))
	// The event before its reply.
	w.observe(eventRecord{ID: "e2", Event: "channel.deleted", User: "bob"}, t0)
	w.expect("channel.deleted|bob", t0.Add(time.Millisecond))
	w.observe(eventRecord{ID: "e2", Event: "channel.deleted", User: "bob"}, t0) // again
	w.expect("totp.device_removed|8", t0)                                       // never comes
	s := w.settle(10 * time.Millisecond)
	if s.Expected != 3 || s.Matched != 2 || s.Missing != 1 || s.Duplicates != 1 || s.LagP99Ms != 3 {
		t.Fatalf("%+v", *s)
	}
}

// TestAcceptedSkipsACollidingStep: the server matches a code to the latest step of its
// window with those digits. A device whose codes of steps s and s+1 are the same (this
// secret's pair was found by search) has s+1 used up when its code of s is accepted
// early in step s, so the tool must not offer s+1 next: the server would refuse it as a
// replay (the 400s with verify.replayed of the PostgreSQL prefetch runs of 8bdb111).
func TestAcceptedSkipsACollidingStep(t *testing.T) {
	const secret, s = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", int64(59141676)
	if code(secret, s) != code(secret, s+1) {
		t.Fatal("the pair does not collide")
	}
	at := func(step int64, sec int64) time.Time { return time.Unix(step*30+sec, 0) }
	d := &loadDevice{Secret: secret, LastStep: s - 4}
	d.accepted(s, at(s, 5))
	if d.LastStep != s+1 {
		t.Fatalf("last step %d after the code of %d was accepted in step %d, want %d", d.LastStep, s, s, s+1)
	}
	if next, ok := d.nextStep(at(s+1, 5)); !ok || next != s+2 || code(secret, next) == code(secret, s) {
		t.Fatalf("next step %d %v, want %d", next, ok, s+2)
	}
	// Late in step s-2 the server's window ends at s-1: s+1 is beyond it, nothing is skipped.
	d = &loadDevice{Secret: secret, LastStep: s - 4}
	d.accepted(s-1, at(s-2, 25))
	if d.LastStep != s-1 {
		t.Fatalf("last step %d, want %d", d.LastStep, s-1)
	}
	// A code without a twin moves the last step to its own.
	d = &loadDevice{Secret: secret, LastStep: s - 4}
	d.accepted(s+1, at(s+1, 5))
	if d.LastStep != s+1 {
		t.Fatalf("last step %d, want %d", d.LastStep, s+1)
	}
}

// TestParseCPUSeconds: utime and stime are counted from the last ')', whatever the
// command name holds.
func TestParseCPUSeconds(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       float64
		ok         bool
	}{
		{"plain", "4242 (mfad) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 1000 0 0\n", 3.25, true},
		{"spaces and parentheses in the name", "7 (a) (b c)) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 0 0", 0.03, true},
		{"no name", "7 a R 1 7 7 0 -1 0 0 0 0 0 1 2", 0, false},
		{"cut short", "7 (mfad) S 1 7 7 0 -1 0 0 0 0 0 1", 0, false},
		{"not a number", "7 (mfad) S 1 7 7 0 -1 0 0 0 0 0 x 2 0", 0, false},
	} {
		got, ok := parseCPUSeconds(tc.stat)
		if ok != tc.ok || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: %v %v, want %v %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

// TestCPUMeterReadsProc measures CPU burnt in this process, first with an idle child
// process as mfad (the tool's figure has it, mfad's does not), then with this process
// as both (the two agree, and the cores are the CPU over the time).
func TestCPUMeterReadsProc(t *testing.T) {
	if _, ok := cpuSeconds("self"); !ok {
		t.Skip("no /proc/self/stat here")
	}
	// spend burns at least 0.05 s of this process's CPU and returns the wall time.
	spend := func() time.Duration {
		_, _, wall := burnFor(t, 1e6, 0.05)
		return wall
	}

	idle := exec.Command("sleep", "30")
	if err := idle.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = idle.Process.Kill(); _ = idle.Wait() }()
	time.Sleep(100 * time.Millisecond) // its start-up is not what is measured
	spend()                            // CPU from before the meter starts, which it must leave out
	m := startCPU(idle.Process.Pid)
	var s summary
	m.stop(&s, 10, spend())
	// 0.05 s over 10 requests is 5,000 µs each; a read is a tick (10 ms) coarse, and
	// spend stops at most one burn (a few ms) past 0.05 s.
	if s.ToolCPUPerRequestUs < 5000 || s.ToolCPUPerRequestUs > 9000 || s.CPUPerRequestUs > 1000 {
		t.Fatalf("idle mfad: mfad %.0f µs, tool %.0f µs a request", s.CPUPerRequestUs, s.ToolCPUPerRequestUs)
	}

	m = startCPU(os.Getpid())
	s = summary{}
	elapsed := spend()
	m.stop(&s, 10, elapsed)
	if s.CPUPerRequestUs < 5000 || s.ToolCPUPerRequestUs < 5000 || math.Abs(s.CPUPerRequestUs-s.ToolCPUPerRequestUs) > 1000 {
		t.Fatalf("mfad %.0f µs, tool %.0f µs a request", s.CPUPerRequestUs, s.ToolCPUPerRequestUs)
	}
	if want := s.CPUPerRequestUs * 10 / 1e6 / elapsed.Seconds(); math.Abs(s.Cores-want) > 1e-9 || s.Cores > float64(runtime.NumCPU())+0.5 {
		t.Fatalf("cores %v, want %v", s.Cores, want)
	}

	var none summary
	startCPU(0).stop(&none, 10, time.Second)
	if none.CPUPerRequestUs != 0 || none.Cores != 0 {
		t.Fatalf("without a pid: %+v", none)
	}
}

// burn spends a fixed amount of CPU work.
func burn(n int) float64 {
	x := 1.0
	for i := 0; i < n; i++ {
		x = math.Sqrt(x + float64(i))
	}
	return x
}

// burnFor calls burn(work) until /proc shows at least seconds more of this process's
// CPU, and returns the calls made, the CPU they used and the wall time they took.
func burnFor(t *testing.T, work int, seconds float64) (calls int, used float64, wall time.Duration) {
	t.Helper()
	start := time.Now()
	c0, _ := cpuSeconds("self")
	for {
		if burn(work) < 0 {
			t.Fatal("a square root below zero")
		}
		calls++
		if c, _ := cpuSeconds("self"); c-c0 >= seconds {
			return calls, c - c0, time.Since(start)
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("no CPU time seen in /proc/self/stat after %v of work", time.Since(start))
		}
	}
}

// TestMeasureDividesTheWindowsCPUByItsRequests runs measure over a scenario whose every
// request sleeps, then burns a known amount of CPU, with this process as mfad: the CPU
// per request it reports must be that amount. Requests are long beside the window, so
// a window whose edges are counted unevenly (the CPU of requests begun in the warm-up
// and ended inside it, without them) is off by about 15 %. The ticks of /proc (10 ms)
// make each reading a few per cent coarse, hence the 9 % allowed.
func TestMeasureDividesTheWindowsCPUByItsRequests(t *testing.T) {
	if _, ok := cpuSeconds("self"); !ok {
		t.Skip("no /proc/self/stat here")
	}
	const work = 300_000
	// The cost of one burn, over enough of them that the 10 ms ticks of /proc do
	// not matter.
	calls, used, _ := burnFor(t, work, 0.6)
	each := used * 1e6 / float64(calls)

	scenarios["cpu-test"] = func(ctx context.Context, v *vu) (result, error) {
		time.Sleep(150 * time.Millisecond)
		if burn(work) < 0 {
			return result{}, errors.New("a square root below zero")
		}
		return result{status: 200, latency: 150 * time.Millisecond}, nil
	}
	defer delete(scenarios, "cpu-test")
	users := make([]*loadUser, 32)
	for i := range users {
		users[i] = &loadUser{}
	}
	o := options{conns: 32, warmup: 300 * time.Millisecond, duration: time.Second, pid: os.Getpid()}
	s := measure(context.Background(), nil, users, "cpu-test", o, nil, io.Discard)
	if s.Requests == 0 {
		t.Fatal("no requests measured")
	}
	if r := s.CPUPerRequestUs / each; r < 0.91 || r > 1.09 {
		t.Fatalf("%.0f µs of CPU a request measured, %.0f µs spent (%.2f×; %d requests)",
			s.CPUPerRequestUs, each, r, s.Requests)
	}
	t.Logf("%.0f µs of CPU a request measured, %.0f µs spent (%.3f×; %d requests)", s.CPUPerRequestUs, each, s.CPUPerRequestUs/each, s.Requests)
}

// TestSetRatios: a scenario's ratio is to the mean of the /healthz rows on either side
// of it, or to the one it has at an edge; a /healthz row's is to the first.
func TestSetRatios(t *testing.T) {
	row := func(name, server string, rps float64) summary {
		return summary{Scenario: name, Server: server, RPS: rps}
	}
	for _, tc := range []struct {
		name string
		rows []summary
		want []float64 // baseline of each row
	}{
		{"bracketed, with a second server",
			[]summary{row("healthz", "", 30), row("status", "", 15), row("status", "b", 12),
				row("healthz", "", 20), row("setup", "", 5), row("setup", "b", 2), row("healthz", "", 40)},
			[]float64{30, 25, 25, 30, 30, 30, 30}},
		{"once", []summary{row("healthz", "", 40), row("status", "", 20), row("verify", "", 10)},
			[]float64{40, 40, 40}},
		{"stopped before the last baseline",
			[]summary{row("healthz", "", 30), row("status", "", 15), row("healthz", "", 10), row("verify", "", 4)},
			[]float64{30, 20, 30, 10}},
		{"stopped during the last baseline",
			[]summary{row("healthz", "", 30), row("status", "", 15), row("healthz", "", 0)},
			[]float64{30, 30, 30}},
		{"no baseline", []summary{row("status", "", 15)}, []float64{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setRatios(tc.rows)
			for i, r := range tc.rows {
				want := 0.0
				if tc.want[i] > 0 {
					want = r.RPS / tc.want[i]
				}
				if r.BaselineRPS != tc.want[i] || math.Abs(r.Ratio-want) > 1e-12 {
					t.Errorf("row %d (%s): baseline %v ratio %v, want %v and %v", i, r.Scenario, r.BaselineRPS, r.Ratio, tc.want[i], want)
				}
			}
		})
	}
}

// TestRunBracketsEveryScenarioWithABaseline runs mfaload against a server that only
// records the paths it is asked for, and checks the order of what ran: /healthz before
// and after each scenario, or once at the start with --baseline once.
func TestRunBracketsEveryScenarioWithABaseline(t *testing.T) {
	var mu sync.Mutex
	var phases []string // the paths asked for, runs of one collapsed
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if len(phases) == 0 || phases[len(phases)-1] != r.URL.Path {
			phases = append(phases, r.URL.Path)
		}
		mu.Unlock()
		time.Sleep(time.Millisecond)
		io.WriteString(w, `{"status":"ok"}`)
	}))
	defer srv.Close()
	const h, status, list = "/healthz", "/api/v1/mfa/status", "/api/v1/mfa/totp/devices"
	for _, tc := range []struct {
		baseline string
		want     []string
	}{
		{"bracket", []string{h, status, h, list, h}},
		{"once", []string{h, status, list}},
	} {
		t.Run(tc.baseline, func(t *testing.T) {
			mu.Lock()
			phases = nil
			mu.Unlock()
			var out bytes.Buffer
			err := run(context.Background(), []string{"--url", srv.URL, "--jwt-secret", "test", "--users", "4",
				"--devices", "0", "-c", "4", "--warmup", "20ms", "--duration", "150ms",
				"--scenarios", "status,list-devices", "--baseline", tc.baseline, "--json", "-"}, &out, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			saw := slices.Clone(phases)
			mu.Unlock()
			if !slices.Equal(saw, tc.want) {
				t.Fatalf("the server saw %v, want %v", saw, tc.want)
			}
			var rows []summary
			if err := json.Unmarshal(out.Bytes()[bytes.IndexByte(out.Bytes(), '['):], &rows); err != nil {
				t.Fatal(err)
			}
			if len(rows) != len(tc.want) {
				t.Fatalf("%d rows, want %d", len(rows), len(tc.want))
			}
			for _, r := range rows {
				if r.Requests == 0 || r.Ratio <= 0 || r.BaselineRPS <= 0 {
					t.Errorf("%s: %d requests, ratio %v, baseline %v", r.Scenario, r.Requests, r.Ratio, r.BaselineRPS)
				}
			}
		})
	}
	// With a second server, /healthz (on the first) brackets both servers' runs of a
	// scenario. Each server is also asked once at the start whether it is up.
	t.Run("compare", func(t *testing.T) {
		second := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			if p := "second " + r.URL.Path; phases[len(phases)-1] != p {
				phases = append(phases, p)
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
			io.WriteString(w, `{"status":"ok"}`)
		}))
		defer second.Close()
		dir := t.TempDir() // the second server's data dir, with its dev token secret
		if err := os.WriteFile(filepath.Join(dir, "jwt-dev.secret"), []byte(base64.StdEncoding.EncodeToString([]byte("test"))), 0o600); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		phases = nil
		mu.Unlock()
		err := run(context.Background(), []string{"--url", srv.URL, "--jwt-secret", "test", "--users", "4",
			"--devices", "0", "-c", "4", "--warmup", "20ms", "--duration", "150ms", "--scenarios", "status,list-devices",
			"--compare", second.URL, "--compare-data-dir", dir}, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{h, "second " + h, h, status, "second " + status, h, list, "second " + list, h}
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(phases, want) {
			t.Fatalf("the servers saw %v, want %v", phases, want)
		}
	})
	if err := run(context.Background(), []string{"--url", srv.URL, "--baseline", "twice"}, io.Discard, io.Discard); err == nil {
		t.Fatal("--baseline twice was accepted")
	}
}

// setupAnswer is shaped like mfad's answer to a TOTP setup, QR code and all. Its data
// is a map in mfad, so the members come sorted: secret after the QR code.
func setupAnswer() []byte {
	return []byte(`{"success":true,"data":{"device_id":42,"device_name":"load","manual_entry_key":"JBSW Y3DP EHPK 3PXP",` +
		`"otpauth_url":"otpauth://totp/mfad:u1?secret=JBSWY3DPEHPK3PXP&issuer=mfad","qr_code":"data:image/png;base64,` +
		strings.Repeat("iVBORw0KGgo", 400) + `","secret":"JBSWY3DPEHPK3PXP"},"message":"scan the QR code"}`)
}

func TestDataFields(t *testing.T) {
	full := setupAnswer()
	var id int64
	var secret string
	if err := dataFields(full, map[string]any{"device_id": &id, "secret": &secret}); err != nil || id != 42 || secret != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("device_id %d secret %q err %v", id, secret, err)
	}
	// It stops at the last member asked for: what follows is not read, so a body cut
	// off inside the QR code still gives device_id, as the setup scenario needs.
	cut := full[:bytes.Index(full, []byte("base64,"))+20]
	if err := dataFields(cut, map[string]any{"device_id": &id}); err != nil || id != 42 {
		t.Fatalf("cut body: device_id %d err %v", id, err)
	}
	var name string
	if err := dataFields(full, map[string]any{"device_name": &name}); err != nil || name != "load" {
		t.Fatalf("device_name %q err %v", name, err)
	}
	// A member repeated counts once: the other one asked for is still read.
	secret = ""
	if err := dataFields([]byte(`{"data":{"device_id":1,"device_id":2,"secret":"S"}}`),
		map[string]any{"device_id": &id, "secret": &secret}); err != nil || secret != "S" {
		t.Fatalf("repeated member: device_id %d secret %q err %v", id, secret, err)
	}
	for _, tc := range []struct{ name, body, want string }{
		{"not JSON", `<html>`, "not a JSON object"},
		{"an array", `[1]`, "not a JSON object"},
		{"no data", `{"success":false,"error":{"code":"X"}}`, `no "data"`},
		{"data not an object", `{"data":[1]}`, "not an object"},
		{"data null", `{"data":null}`, "not an object"},
		{"member missing", `{"data":{"secret":"S"}}`, "lacks 1 of 1"},
		{"wrong type", `{"data":{"device_id":"x"}}`, "data.device_id"},
		{"cut short", `{"data":{"secret":"S",`, "EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := dataFields([]byte(tc.body), map[string]any{"device_id": &id})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// BenchmarkSetupAnswer: what the setup scenario spends on reading an answer, by
// dataFields and by decoding it whole as the tool did before.
func BenchmarkSetupAnswer(b *testing.B) {
	body := setupAnswer()
	b.Run("dataFields", func(b *testing.B) {
		for b.Loop() {
			var id int64
			if err := dataFields(body, map[string]any{"device_id": &id}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("whole", func(b *testing.B) { // the envelope, then its data, as the tool did
		for b.Loop() {
			var env struct {
				Data json.RawMessage `json:"data"`
			}
			var setup struct {
				DeviceID int64 `json:"device_id"`
			}
			if err := json.Unmarshal(body, &env); err != nil {
				b.Fatal(err)
			}
			if err := json.Unmarshal(env.Data, &setup); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestEventWatchReadsOnlyTheBodiesItPairs: duplicates are counted on every message by
// its Nats-Msg-Id, and only the types the scenario waits for are parsed and paired.
func TestEventWatchReadsOnlyTheBodiesItPairs(t *testing.T) {
	w := &eventWatch{}
	w.reset()
	w.pair(scenarioPairs["druid-delete"])
	t0 := time.Now()
	w.expect("channel.deleted|bob", t0)
	// A fact of the same command that no reply waits for: its body is not read (this
	// one would not parse), but a second copy still counts as a duplicate.
	w.receive("mfa.events.totp.device_removed", "id-1", []byte("not JSON"), t0)
	w.receive("mfa.events.totp.device_removed", "id-1", []byte("not JSON"), t0)
	w.receive("mfa.events.channel.deleted", "id-2",
		[]byte(`{"id":"urn:uuid:x","mfa:event":"channel.deleted","mfa:user":"bob"}`), t0.Add(2*time.Millisecond))
	// The header is the id, whatever the body says: this is a copy of id-2.
	w.receive("mfa.events.channel.deleted", "id-2",
		[]byte(`{"id":"urn:uuid:z","mfa:event":"channel.deleted","mfa:user":"bob"}`), t0)
	// Without a Nats-Msg-Id the body's id counts: two copies of y, one of w.
	body := []byte(`{"id":"urn:uuid:y","mfa:event":"signin.disabled","mfa:user":"bob"}`)
	w.receive("mfa.events.signin.disabled", "", body, t0)
	w.receive("mfa.events.signin.disabled", "", body, t0)
	w.receive("mfa.events.signin.disabled", "", []byte(`{"id":"urn:uuid:w","mfa:event":"signin.disabled"}`), t0)
	if len(w.early) != 0 || w.received != 1 {
		t.Fatalf("early %v, received %d: an event no reply waits for was kept", w.early, w.received)
	}
	s := w.settle(10 * time.Millisecond)
	if s.Expected != 1 || s.Matched != 1 || s.Missing != 0 || s.Duplicates != 3 || s.LagP99Ms != 2 {
		t.Fatalf("%+v", *s)
	}
	if w.pairs != nil {
		t.Fatal("the scenario's pairs outlived it")
	}
}

// TestMeasureTellsTheWatchWhatToPair: measure hands the watch the scenario's event
// types, so the events its replies wait for are read and matched, not reported lost.
func TestMeasureTellsTheWatchWhatToPair(t *testing.T) {
	var n atomic.Int64
	scenarios["pair-test"] = func(ctx context.Context, v *vu) (result, error) {
		time.Sleep(time.Millisecond)
		if v.events != nil {
			i := n.Add(1)
			user, at := fmt.Sprintf("u%d", i), time.Now()
			v.events.expect("channel.deleted|"+user, at)
			v.events.receive("mfa.events.channel.deleted", fmt.Sprintf("e%d", i),
				[]byte(`{"mfa:event":"channel.deleted","mfa:user":"`+user+`"}`), at)
		}
		return result{status: 200, latency: time.Millisecond}, nil
	}
	scenarioPairs["pair-test"] = []string{"channel.deleted"}
	defer func() { delete(scenarios, "pair-test"); delete(scenarioPairs, "pair-test") }()
	w := &eventWatch{}
	w.reset()
	users := []*loadUser{{}, {}, {}, {}}
	o := options{conns: 4, warmup: 20 * time.Millisecond, duration: 150 * time.Millisecond}
	s := measure(context.Background(), nil, users, "pair-test", o, w, io.Discard)
	if e := s.Events; e == nil || e.Expected == 0 || e.Matched != e.Expected || e.Missing != 0 {
		t.Fatalf("events %+v", e)
	}
}

// TestEveryWriteScenarioPairsItsEvents runs each write scenario against a server that
// answers every request 200, and checks that each event its replies wait for is of a
// type the watch reads for that scenario: else every such event would be reported lost.
func TestEveryWriteScenarioPairsItsEvents(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"success":true,"data":{"device_id":5,"success":true,"verified":true}}`)
	}))
	defer srv.Close()
	c := newClient(srv.URL, 1, []byte("test"))
	for _, name := range []string{"setup", "verify", "delete-device", "druid-delete", "mixed"} {
		t.Run(name, func(t *testing.T) {
			w := &eventWatch{}
			w.reset()
			var users []*loadUser
			for i := range 20 {
				users = append(users, &loadUser{ID: fmt.Sprintf("u%d", i), Devices: []*loadDevice{
					{ID: int64(i), Secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", LastStep: -1}}})
			}
			v := &vu{c: c, users: users, rng: rand.New(rand.NewPCG(1, 2)), events: w}
			for range 60 {
				if _, err := scenarios[name](context.Background(), v); err != nil && !errors.Is(err, errIdle) && !errors.Is(err, errExhausted) {
					t.Fatal(err)
				}
			}
			if len(w.pending) == 0 {
				t.Fatal("no reply waited for an event")
			}
			for key := range w.pending {
				typ, _, _ := strings.Cut(key, "|")
				if !slices.Contains(scenarioPairs[name], typ) {
					t.Errorf("a reply waits for %s, which %s does not read", typ, name)
				}
			}
		})
	}
}

// TestMeasureEndsWhenTheFirstConnectionRunsOut: once one virtual user has nothing left
// to remove, fewer connections than asked for are at work, so the window ends there
// and the summary says the pool ran out.
func TestMeasureEndsWhenTheFirstConnectionRunsOut(t *testing.T) {
	scenarios["run-out-test"] = func(ctx context.Context, v *vu) (result, error) {
		time.Sleep(2 * time.Millisecond)
		if u := v.pick(); u.ID == "short" && v.next > 20 {
			return result{}, errExhausted
		}
		return result{status: 200, latency: 2 * time.Millisecond}, nil
	}
	defer delete(scenarios, "run-out-test")
	users := []*loadUser{{ID: "short"}, {ID: "a"}, {ID: "b"}, {ID: "c"}} // the first is one connection's share
	o := options{conns: 4, warmup: 10 * time.Millisecond, duration: 5 * time.Second}
	s := measure(context.Background(), nil, users, "run-out-test", o, nil, io.Discard)
	if !s.Exhausted || s.Seconds > 1 || s.Requests == 0 {
		t.Fatalf("exhausted %v after %.2f s with %d requests; want the window to end when the first connection ran out",
			s.Exhausted, s.Seconds, s.Requests)
	}
}
