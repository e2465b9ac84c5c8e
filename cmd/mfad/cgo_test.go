package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestBuildWithoutCgoFails: without cgo mfad must not build (SQLite would fail at run
// time instead), and the error must say what to do. The first run compiles the
// dependencies without cgo, a minute or so on two cores; later runs hit the cache.
func TestBuildWithoutCgoFails(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mfad without cgo: skipped with -short")
	}
	cmd := exec.Command("go", "build", "-o", os.DevNull, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err == nil {
		t.Fatal("mfad built with CGO_ENABLED=0")
	}
	const want = "undefined: mfad_needs_cgo__install_a_C_compiler_such_as_gcc_and_build_with_CGO_ENABLED_1"
	if !strings.Contains(out.String(), want) {
		t.Fatalf("the failed build does not say why:\n%s", out.String())
	}
}
