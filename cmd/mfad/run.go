package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// usageError is a mistake on the command line: exit status 2, one clear line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `mfad — MFA management service

Usage:
  mfad serve   [flags]   run the service (HTTP API, workers, outbox relay; embedded NATS
                         and SQLite in ./data unless configured otherwise)
  mfad gateway [flags]   deliver SMS and e-mail codes and notices from MFA_NOTIFY
                         (--dev prints them instead)
  mfad token   [flags]   print a signed development token (with the secret of
                         MFAD_JWT_SECRET or the one mfad serve made in ./data)
  mfad nats-url --role R print the embedded NATS server's URL for an outside user:
                         gateway, auditor or producer
  mfad audit verify      check the audit log's hash chain
  mfad audit tail        follow events from NATS, human-readable
  mfad audit sink        copy MFA_EVENTS into another SQLite file
  mfad keys status       what each sealing key still seals
  mfad keys reseal       seal secrets again under the first key (key rotation)
  mfad store copy        copy the data dir's SQLite database into PostgreSQL
  mfad version           print version, commit and Go version
  mfad help [command]    show help

Every flag is also an environment variable: --http-addr is MFAD_HTTP_ADDR.
Run 'mfad <command> --help' for a command's flags.
`

// run is the whole program; main only adds signals and the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	err := dispatch(ctx, args, getenv, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr)
	case "token":
		return runToken(rest, getenv, stdout, stderr)
	case "nats-url":
		return runNATSURL(rest, getenv, stdout)
	case "audit":
		return runAudit(ctx, rest, getenv, stdout, stderr)
	case "keys":
		return runKeys(ctx, rest, getenv, stdout, stderr)
	case "store":
		return runStore(ctx, rest, getenv, stdout, stderr)
	case "version", "--version":
		return runVersion(rest, stdout)
	case "gateway":
		return runGateway(ctx, rest, getenv, stdout, stderr)
	case "help", "-h", "--help":
		if len(rest) > 0 && rest[0] != "help" {
			return dispatch(ctx, []string{rest[0], "--help"}, getenv, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}

// parseFlags parses args into fs, filling every flag not given on the command line from
// its MFAD_* environment variable, if annotateEnv gave it one. --help prints the flags
// and ends the command.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string, out io.Writer) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(out)
			fmt.Fprintf(out, "Usage: mfad %s [flags]\n\nFlags (environment variable in brackets):\n", fs.Name())
			fs.PrintDefaults()
			return flag.ErrHelp
		}
		return usageError{fmt.Sprintf("%s: %v", fs.Name(), err)}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil || !hasEnv(f) {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = usageError{fmt.Sprintf("%s=%q: %v", envName(f.Name), v, e)}
			}
		}
	})
	return err
}

// parseFlagsAbout is parseFlags plus about, what the command does, after the flag list
// on --help.
func parseFlagsAbout(fs *flag.FlagSet, args []string, getenv func(string) string, stdout io.Writer, about string) error {
	err := parseFlags(fs, args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, "\n"+about)
	}
	return err
}

// envName is the environment variable of a flag: http-addr → MFAD_HTTP_ADDR.
func envName(flagName string) string {
	return "MFAD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// hasEnv reports whether annotateEnv gave f an environment variable. The help text is
// the record, so --help and the environment cannot disagree: a command's own flags
// (token --sub/--scope, audit sink --db) are not silently set by MFAD_SUB or MFAD_DB.
func hasEnv(f *flag.Flag) bool {
	return strings.HasSuffix(f.Usage, " ["+envName(f.Name)+"]")
}
