package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/mfad/mfad/channels"
	"github.com/mfad/mfad/channels/postgres"
	"github.com/mfad/mfad/channels/sqlite"
)

const keysUsage = `Usage: mfad keys <command> [flags]

Commands:
  status   how many records each sealing key (MFAD_SECRET_KEY) still seals or keys
  reseal   seal every TOTP secret and address again under the first key

To rotate: put the new key first in MFAD_SECRET_KEY and keep the old ones after it,
restart, run 'mfad keys reseal', and drop an old key once 'mfad keys status' shows it
holds nothing you still need. Backup codes and one-time codes are keyed hashes that
cannot be recomputed: they go when users regenerate their backup codes (one-time codes
and idempotent replies expire within a day by themselves).

Run 'mfad keys <command> --help' for its flags.
`

func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return usageError{"keys: no command given"}
	}
	switch args[0] {
	case "status", "reseal":
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, keysUsage)
		return flag.ErrHelp
	default:
		fmt.Fprint(stderr, keysUsage)
		return usageError{fmt.Sprintf("keys: unknown command %q", args[0])}
	}
	var cfg Config
	fs := flag.NewFlagSet("keys "+args[0], flag.ContinueOnError)
	fs.StringVar(&cfg.DataDir, "data-dir", "./data", "directory of mfad.db and the generated keys")
	cfg.registerDatabaseURL(fs)
	fs.StringVar(&cfg.SecretKey, "secret-key", "", "base64 AES-256 key(s) sealing secrets at rest, comma-separated, first seals; empty = the key file in the data dir")
	cfg.registerAuditKey(fs)
	annotateEnv(fs)
	if err := parseFlags(fs, args[1:], getenv, stdout); err != nil {
		return err
	}
	sealer, err := cfg.sealer(false)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	chain, err := cfg.auditChain(false)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	var store channels.Store
	if cfg.DatabaseURL != "" {
		s, err := postgres.Open(ctx, cfg.DatabaseURL, chain, postgres.Options{MaxConns: 2})
		if err != nil {
			return fmt.Errorf("keys: %w", err)
		}
		defer s.Close()
		store = s
	} else {
		s, err := sqlite.Open(ctx, cfg.dbPath(), chain)
		if err != nil {
			return fmt.Errorf("keys: %w", err)
		}
		defer s.Close()
		store = s
	}
	if args[0] == "reseal" {
		n, err := channels.Reseal(ctx, store, sealer)
		if err != nil {
			return fmt.Errorf("keys reseal: %w (%d sealed again before it)", err, n)
		}
		fmt.Fprintf(stdout, "sealed again under key %s: %d methods\n", sealer.PrimaryKeyID(), n)
	}
	uses, err := channels.KeyUsage(ctx, store)
	if err != nil {
		return fmt.Errorf("keys status: %w", err)
	}
	printKeyUsage(stdout, sealer, uses)
	return nil
}

// printKeyUsage lists, per key, what it still holds and whether it is configured.
func printKeyUsage(out io.Writer, sealer *channels.Sealer, uses []channels.KeyUse) {
	configured := sealer.KeyIDs()
	role := func(id string) string {
		switch i := slices.Index(configured, id); {
		case i == 0:
			return "primary"
		case i > 0:
			return "configured"
		}
		return "NOT CONFIGURED"
	}
	byKey := map[string][]string{}
	for _, u := range uses {
		byKey[u.KeyID] = append(byKey[u.KeyID], fmt.Sprintf("%d %s", u.Count, u.Record))
	}
	ids := append([]string{}, configured...)
	for id := range byKey {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KEY\tSTATE\tHOLDS")
	for _, id := range ids {
		holds := strings.Join(byKey[id], ", ")
		switch {
		case holds == "" && role(id) == "primary":
			holds = "nothing yet" // what is sealed next is sealed under it
		case holds == "":
			holds = "nothing (can be dropped)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", id, role(id), holds)
	}
	w.Flush()
}
