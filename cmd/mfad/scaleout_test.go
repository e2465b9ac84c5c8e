package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfad/mfad/activity"
)

// TestScaleOutOnANATSCluster (issue 6): the compose topology as real processes. Three
// nats-server nodes form a JetStream cluster; two `mfad serve --role api` and one
// `--role worker` share it, with MFAD_STREAM_REPLICAS=3. Users enrol TOTP devices,
// sign in with them, read their status and remove them through both API nodes at once,
// while the NATS node the worker is connected to, first made the leader of MFA_EVENTS by
// a step-down, is killed (SIGKILL) and started again on the same store and ports. Users
// pace themselves (a cycle every 250ms at most) so the run's events stay few enough to
// check quickly. It checks that
//   - the streams have three replicas on three different nodes;
//   - every request was answered 200 or failed cleanly: 503 SERVICE_UNAVAILABLE in the
//     device dialect's envelope with Retry-After, within the client timeout, never a 500
//     or a hang; a write resent with its Idempotency-Key then succeeds;
//   - traffic goes on while the node is down and after it is back;
//   - afterwards MFA_EVENTS holds exactly the worker's audit rows, once each (no
//     duplicate Nats-Msg-Id), in Mfa-Seq order, and each successful write has its one
//     event naming its device;
//   - every mfad process shuts down cleanly, having logged no error;
//   - no nats-server reports a "critical write error".
//
// Note on Nats-Expected-Last-Msg-Id. On a replicated stream nats-server (2.15.2, the
// version go.mod requires) does not check that header when the leader proposes a
// message, only when each replica applies it, and since 2.14 a failed check there is a
// critical write error: every replica steps down and turns observer, and replays the
// same entry after a restart, so the stream keeps no leader until an operator repairs
// it. The outbox relay chains a window of up to 256 messages with that header; when
// the stream leader changes (here the step-down and the kill) while a window is in
// flight, a message can reach the new leader after its predecessor was lost with the
// old one, and MFA_EVENTS is wedged for good. checkWritable fails the test on the
// first such line, so the cause is named rather than a timeout.
func TestScaleOutOnANATSCluster(t *testing.T) {
	const (
		secret = "scale-out-hs256-secret-of-at-least-32-bytes"
		users  = 8
		phase  = 100 // answered operations before the kill, while down, after the restart
	)
	mfadBinary(t) // build before the clock of the cluster starts
	began := time.Now()
	cluster := startNATSCluster(t, 3)
	t.Logf("NATS cluster ready in %v", time.Since(began).Round(time.Millisecond))
	nc := cluster.connect()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	common := []string{"MFAD_NATS_URL=" + cluster.url(), "MFAD_STREAM_REPLICAS=3", "MFAD_JWT_SECRET=" + secret}
	workerDir := t.TempDir()
	worker := startMFAD(t, "mfad worker", append(common, "MFAD_ROLE=worker", "MFAD_DATA_DIR="+workerDir,
		"MFAD_SECRET_KEY="+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)))...)
	var apis []*process
	for i := range 2 {
		apis = append(apis, startMFAD(t, fmt.Sprint("mfad api", i+1), append(common, "MFAD_ROLE=api",
			"MFAD_DATA_DIR="+t.TempDir(), "MFAD_HTTP_ADDR=127.0.0.1:0")...))
	}
	t.Logf("mfad processes started in %v", time.Since(began).Round(time.Millisecond))

	// Three replicas, on three different nodes, for every stream mfad created.
	for _, name := range []string{activity.EventsStream, activity.ActivitiesStream, activity.NotifyStream} {
		info := streamInfo(js, name)
		if info == nil || info.Config.Replicas != 3 || info.Cluster == nil || info.Cluster.Leader == "" ||
			len(info.Cluster.Replicas) != 2 {
			t.Fatalf("stream %s: %+v", name, info)
		}
		nodes := []string{info.Cluster.Leader}
		for _, p := range info.Cluster.Replicas {
			nodes = append(nodes, p.Name)
		}
		slices.Sort(nodes)
		if strings.Join(nodes, ",") != "n1,n2,n3" {
			t.Fatalf("stream %s lives on %v, want n1, n2 and n3", name, nodes)
		}
	}

	d := &loadDriver{t: t, client: newAPIClient(secret, 15*time.Second), giveUp: 30 * time.Second,
		pace: 250 * time.Millisecond}
	for _, p := range apis {
		d.bases = append(d.bases, baseURL(p))
	}
	start := time.Now()
	stop := make(chan struct{})
	wait := d.run(users, "scale", stop)
	progress := func(what string, from int64) {
		t.Helper()
		pollUntil(t, 60*time.Second, what, func() bool {
			cluster.checkWritable()
			return d.ok.Load() >= from+phase || d.failing()
		})
		d.report()
		t.Logf("%v: %s: %d operations answered", time.Since(start).Round(time.Millisecond), what, d.ok.Load())
	}
	progress("traffic", 0)

	// The node to kill is the one the worker is connected to, made the leader of
	// MFA_EVENTS first: the worker's command subscriptions, the replies it owes, the
	// relay's publishes in flight and the stream's leader all go at once.
	down := cluster.serving("mfad-worker")
	if down < 0 {
		t.Fatal("no NATS node serves the worker's connection")
	}
	cluster.lead(nc, js, activity.EventsStream, down)
	leader := cluster.nodes[down].name
	killedAt := d.ok.Load()
	cluster.nodes[down].proc.kill9()
	pollUntil(t, 60*time.Second, "a new MFA_EVENTS leader", func() bool {
		cluster.checkWritable()
		info := streamInfo(js, activity.EventsStream)
		return info != nil && info.Cluster != nil && info.Cluster.Leader != "" && info.Cluster.Leader != leader
	})
	worker.waitLog("NATS reconnected")
	t.Logf("%v: %s leads MFA_EVENTS", time.Since(start).Round(time.Millisecond), streamInfo(js, activity.EventsStream).Cluster.Leader)
	progress("traffic with a node down", killedAt)
	t.Logf("killed %s, the MFA_EVENTS leader and the worker's server, after %v; %d operations answered since",
		leader, time.Since(start).Round(time.Millisecond), d.ok.Load()-killedAt)

	cluster.start(down)
	restartedAt := d.ok.Load()
	pollUntil(t, 60*time.Second, leader+" current in every stream again", func() bool {
		cluster.checkWritable()
		for _, name := range []string{activity.EventsStream, activity.ActivitiesStream, activity.NotifyStream} {
			info := streamInfo(js, name)
			if info == nil || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
				return false
			}
			for _, p := range info.Cluster.Replicas {
				if !p.Current || p.Offline {
					return false
				}
			}
		}
		return true
	})
	t.Logf("%v: %s is current again in every stream", time.Since(start).Round(time.Millisecond), leader)
	progress("traffic after the restart", restartedAt)
	close(stop)
	wait()
	d.report()
	t.Logf("%d operations answered in %v through 2 API nodes; %d answers were a clean 503 and were resent",
		d.ok.Load(), time.Since(start).Round(time.Millisecond), d.unavailable.Load())

	// The worker's outbox drains into the stream; then every process stops cleanly.
	dbPath := filepath.Join(workerDir, "mfad.db")
	db := openDB(t, dbPath, true)
	pollUntil(t, 60*time.Second, "drained outbox", func() bool {
		cluster.checkWritable()
		var last int64
		if err := db.QueryRow("SELECT coalesce(max(seq), 0) FROM audit_log").Scan(&last); err != nil {
			return false
		}
		return unpublished(db) == 0 && lastEventSeq(js) == last
	})
	db.Close()
	t.Logf("%v: outbox drained", time.Since(start).Round(time.Millisecond))
	for _, p := range apis {
		p.stopCleanly()
	}
	worker.stopCleanly()

	db = openDB(t, dbPath, true)
	integrityOK(t, db)
	rows := readAudit(t, db)
	checkEventsMatchAudit(t, readEvents(t, js), rows)
	checkOpsHaveEvents(t, d.ops, rows, true)
	for _, op := range []string{opSetup, opVerify, opSignIn, opRemove} {
		if n := d.count(op); n < users {
			t.Fatalf("only %d %s operations were answered", n, op)
		}
	}
	t.Logf("%d audit rows, all in MFA_EVENTS once, in order; %v in all", len(rows), time.Since(began).Round(time.Millisecond))
}
