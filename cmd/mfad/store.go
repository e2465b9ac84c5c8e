package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"

	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels/postgres"
	"github.com/mfad/mfad/channels/sqlite"
)

const storeUsage = `Usage: mfad store <command> [flags]

Commands:
  copy     copy the SQLite database of the data dir into an empty PostgreSQL database

Run 'mfad store <command> --help' for its flags.
`

func runStore(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, storeUsage)
		return usageError{"store: no command given"}
	}
	switch args[0] {
	case "copy":
		return runStoreCopy(ctx, args[1:], getenv, stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, storeUsage)
		return flag.ErrHelp
	}
	fmt.Fprint(stderr, storeUsage)
	return usageError{fmt.Sprintf("store: unknown command %q", args[0])}
}

const copyAbout = `Grows an embedded installation into one on PostgreSQL: copies every user, method,
backup code, one-time code, pending setup, idempotent reply, queued notification
and audit record of <data-dir>/mfad.db into the empty database of --to, keeping
ids, audit seqs, hashes and key ids, the key canary and the sealed start of the
keyed chain, so the same MFAD_SECRET_KEY and MFAD_AUDIT_KEY open and verify
everything. Stop mfad first. A target that holds any data is refused. The copied
chain is verified before the command reports success; then start the workers with
MFAD_DATABASE_URL set to the same URL.
`

// runStoreCopy: mfad store copy --to postgres://… [--data-dir] [--audit-key].
func runStoreCopy(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var (
		cfg Config
		to  string
	)
	fs := flag.NewFlagSet("store copy", flag.ContinueOnError)
	fs.StringVar(&cfg.DataDir, "data-dir", "./data", "directory of mfad.db, the database to copy")
	cfg.registerAuditKey(fs)
	annotateEnv(fs)
	fs.StringVar(&to, "to", "", "PostgreSQL URL of the empty target database (required)")
	if err := parseFlagsAbout(fs, args, getenv, stdout, copyAbout); err != nil {
		return err
	}
	if to == "" || !isPostgresURL(to) {
		return usageError{"store copy: --to must name the target PostgreSQL database (postgres://…)"}
	}
	chain, err := cfg.auditChain(false)
	if err != nil {
		return fmt.Errorf("store copy: %w", err)
	}
	src, err := sqlite.OpenReadOnly(ctx, cfg.dbPath())
	if err != nil {
		return fmt.Errorf("store copy: %w", err)
	}
	defer src.Close()
	// The source's chain must verify under the configured keys before anything moves:
	// a copy is no place to discover a wrong key.
	n, err := audit.Verify(ctx, src.Records(), chain)
	if err != nil {
		return fmt.Errorf("store copy: the audit log of %s does not verify: %w (%d records before it are intact)", cfg.dbPath(), err, n)
	}
	dst, err := postgres.Open(ctx, to, chain, postgres.Options{})
	if err != nil {
		return fmt.Errorf("store copy: %w", err)
	}
	defer dst.Close()
	var counts map[string]int
	err = src.Export(ctx, func(snap sqlite.Snapshot) error {
		var err error
		counts, err = dst.Import(ctx, snap)
		return err
	})
	if err != nil {
		return fmt.Errorf("store copy to %s: %w", postgres.Describe(to), err)
	}
	copied, err := audit.Verify(ctx, dst.Records(), chain)
	if err != nil {
		return fmt.Errorf("store copy: the copied audit log does not verify: %w", err)
	}
	names := make([]string, 0, len(counts))
	for t := range counts {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		fmt.Fprintf(stdout, "%-14s %d rows\n", t, counts[t])
	}
	fmt.Fprintf(stdout, "ok: copied to %s; the audit chain verifies: %d records\n", postgres.Describe(to), copied)
	return nil
}
