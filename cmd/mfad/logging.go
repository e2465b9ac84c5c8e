package main

import (
	"flag"
	"fmt"
	"github.com/mfad/mfad/channels/postgres"
	"io"
	"log/slog"
	"os"
	"sort"
)

// Log formats (--log-format): a person at a terminal reads text; a collector wants one
// JSON object a line, which is what a process without a terminal usually feeds.
const (
	logFormatAuto = "auto"
	logFormatText = "text"
	logFormatJSON = "json"
)

func checkLogFormat(format string) error {
	switch format {
	case logFormatAuto, logFormatText, logFormatJSON:
		return nil
	}
	return usageError{fmt.Sprintf("--log-format must be auto, text or json, not %q", format)}
}

// newLogger writes to w at level in format; text reports whether it chose text.
func newLogger(w io.Writer, format, level string) (log *slog.Logger, text bool) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == logFormatText || format == logFormatAuto && isTerminal(w) {
		return slog.New(slog.NewTextHandler(w, opts)), true
	}
	return slog.New(slog.NewJSONHandler(w, opts)), false
}

// isTerminal reports whether w is a character device (a terminal), without a
// dependency: that is all "auto" needs to know.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// logEffective logs every setting of fs, secrets masked: one JSON line holding them
// all, which a collector keeps together, or in text one line per setting, which a
// person can read.
func logEffective(log *slog.Logger, fs *flag.FlagSet, text bool) {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	var attrs []any
	for _, n := range names {
		v := fs.Lookup(n).Value.String()
		if secretFlags[n] && v != "" {
			v = "********"
		}
		if n == "database-url" && v != "" {
			v = postgres.Describe(v) // hosts and database only: key=value strings are no URLs to redact
		} else {
			v = redactURLs(v)
		}
		if text {
			log.Info("setting", envName(n), v)
			continue
		}
		attrs = append(attrs, envName(n), v)
	}
	if !text {
		log.Info("effective configuration", attrs...)
	}
}
