package main

import (
	"flag"
	"os"
	"strings"
	"testing"
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
