package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestLogFormat: auto writes text to a terminal (a character device) and JSON to
// anything else; text and json are what they say.
func TestLogFormat(t *testing.T) {
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	cases := []struct {
		name, format string
		out          *os.File
		buffer       bool
		text         bool
	}{
		{"auto, buffer", logFormatAuto, nil, true, false},
		{"auto, pipe", logFormatAuto, w, false, false},
		{"auto, character device", logFormatAuto, devNull, false, true},
		{"text, buffer", logFormatText, nil, true, true},
		{"json, character device", logFormatJSON, devNull, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			var log, text = newLogger(&buf, tc.format, "info")
			if !tc.buffer {
				log, text = newLogger(tc.out, tc.format, "info")
			}
			if text != tc.text || log == nil {
				t.Fatalf("text = %v, want %v", text, tc.text)
			}
		})
	}
	var buf bytes.Buffer
	log, _ := newLogger(&buf, logFormatText, "warn")
	log.Info("hidden")
	log.Warn("shown", "k", "v")
	if got := buf.String(); strings.Contains(got, "hidden") || !strings.Contains(got, `level=WARN msg=shown k=v`) {
		t.Fatalf("text log at warn: %q", got)
	}
}

// TestTextConfigurationOneLinePerSetting: in text, the effective configuration is one
// line per setting, each naming its variable once, secrets masked.
func TestTextConfigurationOneLinePerSetting(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.register(fs)
	if err := parseFlags(fs, []string{"--jwt-secret", "text-mode-secret-0123456789abcdefghij"}, env(), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log, _ := newLogger(&buf, logFormatText, "info")
	logEffective(log, fs, true)
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if len(lines) != n {
		t.Fatalf("%d lines for %d settings:\n%s", len(lines), n, buf.String())
	}
	setting := regexp.MustCompile(`^time=\S+ level=INFO msg=setting (MFAD_[A-Z_]+)=`)
	seen := map[string]bool{}
	for _, l := range lines {
		m := setting.FindStringSubmatch(l)
		if m == nil || seen[m[1]] {
			t.Fatalf("line %q is not one setting, or repeats one", l)
		}
		seen[m[1]] = true
	}
	if !strings.Contains(buf.String(), "MFAD_JWT_SECRET=********\n") || strings.Contains(buf.String(), "text-mode-secret") {
		t.Fatalf("secret not masked:\n%s", buf.String())
	}
}

// TestServeLogsText: the binary asked for text logs writes no JSON.
func TestServeLogsText(t *testing.T) {
	p := startProcess(t, "mfad", mfadBinary(t), cleanEnv("MFAD_DATA_DIR="+t.TempDir(), "MFAD_HTTP_ADDR=127.0.0.1:0",
		"MFAD_NATS_LISTEN=127.0.0.1:0", "MFAD_LOG_FORMAT=text"), "serve")
	p.waitText(`msg="mfad started"`)
	if code := p.stop(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	settings := 0
	for _, l := range p.output() {
		var v any
		if json.Unmarshal([]byte(l), &v) == nil {
			t.Fatalf("a JSON line in text mode: %s", l)
		}
		if strings.Contains(l, " msg=setting MFAD_") {
			settings++
		}
	}
	var cfg Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.register(fs)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if settings != n {
		t.Fatalf("%d setting lines, want %d", settings, n)
	}
}
