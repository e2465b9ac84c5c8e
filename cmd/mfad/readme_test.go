package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfad/mfad/activity"
)

// TestReadmeConfigurationTable keeps README.md true: every setting of serve, and of
// gateway in its own table, has a row with its variable, flag and default, and the two
// first commands are there.
func TestReadmeConfigurationTable(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	for _, cmd := range []string{"go run ./cmd/mfad serve\n", "go test -race -count=1 ./...\n"} {
		if !strings.Contains(readme, "\n"+cmd) {
			t.Errorf("README.md does not show %q on a line of its own", strings.TrimSpace(cmd))
		}
	}
	var cfg Config
	serve := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.register(serve)
	checkRows(t, readme, "the serve table", serve)

	// The gateway shares some names with serve (MFAD_NATS_URL…), so its rows are looked
	// for in its own section: from its heading to the next one.
	_, section, ok := strings.Cut(readme, "\n### `mfad gateway`\n")
	if !ok {
		t.Fatal("README.md has no section ### `mfad gateway`")
	}
	if i := strings.Index(section, "\n#"); i >= 0 {
		section = section[:i]
	}
	var gcfg GatewayConfig
	gateway := flag.NewFlagSet("gateway", flag.ContinueOnError)
	gcfg.register(gateway)
	checkRows(t, section, "the gateway table", gateway)
}

// checkRows wants a row in text for every flag of fs.
func checkRows(t *testing.T, text, where string, fs *flag.FlagSet) {
	t.Helper()
	fs.VisitAll(func(f *flag.Flag) {
		def := "—" // --help shows no default for zero values
		switch f.DefValue {
		case "", "0", "0s", "false":
		default:
			def = "`" + f.DefValue + "`"
		}
		row := "| `" + envName(f.Name) + "` | `--" + f.Name + "` | " + def + " |"
		if !strings.Contains(text, row) {
			t.Errorf("README.md has no row in %s starting %s", where, row)
		}
	})
}

// readmeNATSConfig is the ```conf block of README.md that starts with "accounts {".
func readmeNATSConfig(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(raw), "```conf\naccounts {\n")
	block, _, closed := strings.Cut(rest, "```")
	if !ok || !closed {
		t.Fatal("README.md has no ```conf block starting with accounts {")
	}
	return "accounts {\n" + block
}

// TestReadmeNATSConfig keeps README's NATS configuration what the code grants (the
// embedded server runs the same, from the same grants), and proves it on a nats-server
// of the version in go.mod: mfad's api and worker processes run on their users without
// one refused operation, each outside user does its job, and a forbidden operation is
// refused.
func TestReadmeNATSConfig(t *testing.T) {
	block := readmeNATSConfig(t)
	if want := externalNATSConfig(); block != want {
		t.Fatalf("README.md's NATS configuration is not the one the grants make; it should read:\n%s", want)
	}
	bin := natsServerBinary(t)
	port := freePort(t)
	conf := filepath.Join(t.TempDir(), "nats.conf")
	text := fmt.Sprintf("listen: \"127.0.0.1:%d\"\njetstream {store_dir: %q}\n", port, t.TempDir()) + block
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	passwords := map[string]string{}
	var env []string
	for _, g := range activity.Grants() {
		passwords[g.User] = randomPassword()
		env = append(env, passwordVar(g.User)+"="+passwords[g.User])
	}
	ns := startProcess(t, "nats-server", bin, cleanEnv(env...), "-c", conf)
	ns.waitText("Server is ready")
	url := func(user string) string {
		return fmt.Sprintf("nats://%s:%s@127.0.0.1:%d", user, passwords[user], port)
	}

	worker := startMFAD(t, "mfad worker", "MFAD_NATS_URL="+url(activity.UserWorker), "MFAD_ROLE=worker",
		"MFAD_DATA_DIR="+t.TempDir())
	apiDir := t.TempDir()
	api := startMFAD(t, "mfad api", "MFAD_NATS_URL="+url(activity.UserAPI), "MFAD_ROLE=api",
		"MFAD_DATA_DIR="+apiDir, "MFAD_HTTP_ADDR=127.0.0.1:0")
	base := baseURL(api)
	alice := mintToken(t, nil, "--sub", "alice", "--data-dir", apiDir)
	admin := mintToken(t, nil, "--sub", "root", "--scope", "mfa:admin", "--data-dir", apiDir)
	checkStatus(t, base, alice)
	tail, stopTail := tailLines(t, "--nats-url", url(activity.UserAuditor), "--since", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// A write through the API: the worker commits it and publishes its event.
	if a := httpDo(t, http.MethodPost, base+"/api/v1/mfa/totp/setup", alice, `{"device_name":"phone"}`); a.status != http.StatusOK {
		t.Fatalf("totp/setup: %d %s", a.status, a.raw)
	}
	waitLine(t, tail, "totp.device_set_up")

	// An activity from the producer: the worker ingests it, the gateway gets the code.
	producer, err := nats.Connect(url(activity.UserProducer))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	pjs, _ := jetstream.New(producer)
	msg := nats.NewMsg(fmt.Sprintf(activity.ActivitySubjectT, activity.VerbUpdate))
	msg.Data = druidActivity(activity.VerbUpdate, map[string]any{"mfa_channel": "email", "mfa_channel_address": "alice@example.com"})
	msg.Header.Set(activity.FromHeader, "bank-web")
	if _, err := pjs.PublishMsg(ctx, msg); err != nil {
		t.Fatalf("producer: %v", err)
	}
	waitLine(t, tail, "channel.registered")
	stopTail()
	gateway, err := nats.Connect(url(activity.UserGateway))
	if err != nil {
		t.Fatal(err)
	}
	defer gateway.Close()
	batch := fetchNotification(ctx, t, gateway)
	for m := range batch.Messages() {
		if !strings.Contains(string(m.Data()), "alice@example.com") {
			t.Fatalf("notification %s", m.Data())
		}
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// The dashboard's live feed on the API node reads MFA_EVENTS with the api user.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/dashboard/events", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("dashboard events: %v %v", resp, err)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && sc.Text() != "event: channel.registered" {
	}
	resp.Body.Close()
	if sc.Err() != nil {
		t.Fatalf("dashboard events: %v", sc.Err())
	}

	auditor, err := nats.Connect(url(activity.UserAuditor))
	if err != nil {
		t.Fatal(err)
	}
	defer auditor.Close()
	refused(t, auditor, "mfa.cmd.admin.reset", func() error { return auditor.Publish("mfa.cmd.admin.reset", []byte(`{}`)) })
	if _, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", port), nats.NoReconnect()); err == nil ||
		!strings.Contains(err.Error(), "Authorization Violation") {
		t.Fatalf("anonymous connection: %v", err)
	}
	api.stopCleanly()
	worker.stopCleanly()
}
