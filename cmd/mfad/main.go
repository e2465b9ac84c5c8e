// Command mfad is the MFA management service: `mfad serve` runs it, `mfad token` mints a
// development token, `mfad audit …` checks and follows the audit log. Run `mfad help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	_ "github.com/mfad/mfad/cmd/mfad/internal/needcgo" // a build without cgo fails, saying why
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var usage usageError
		if errors.As(err, &usage) {
			fmt.Fprintln(os.Stderr, "mfad:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "mfad:", err)
		os.Exit(1)
	}
}
