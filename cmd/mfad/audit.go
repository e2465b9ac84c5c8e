package main

import (
	"context"
	"io"
)

func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return usageError{"audit: not available yet"}
}
