package main

import (
	"flag"
	"os"
	"strings"
	"testing"
)

// TestReadmeConfigurationTable keeps README.md true: every serve setting has a row with
// its variable, flag and default, and the two first commands are there.
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
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.register(fs)
	fs.VisitAll(func(f *flag.Flag) {
		def := "—" // --help shows no default for zero values
		switch f.DefValue {
		case "", "0", "0s", "false":
		default:
			def = "`" + f.DefValue + "`"
		}
		row := "| `" + envName(f.Name) + "` | `--" + f.Name + "` | " + def + " |"
		if !strings.Contains(readme, row) {
			t.Errorf("README.md has no configuration row starting %s", row)
		}
	})
}
