package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mfad/mfad/handlers"
)

// startDebug serves Go's profiles on their own listener, never on the API port: they
// reveal internals and cost CPU, so an operator opts in and keeps the address private.
// The metrics and the /healthz and /readyz probes are served there too.
func startDebug(addr string, reg prometheus.Gatherer, ready []handlers.Check, log *slog.Logger) (*http.Server, error) {
	mux := http.NewServeMux()
	// The probes too: a worker-only process has no API listener for a supervisor to ask.
	ops := handlers.OpsHandler(ready, log)
	mux.Handle("/healthz", ops)
	mux.Handle("/readyz", ops)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// The metrics too: a worker-role process has no API listener to serve them on.
	srv, at, err := serveWithMetrics(addr, "--debug-addr", "debug", mux, reg, log)
	if err != nil {
		return nil, err
	}
	log.Info("debug server listening", "addr", at.String())
	return srv, nil
}

// serveWithMetrics serves mux, and reg at /metrics, on a listener of its own at addr,
// which the flag named flagName set. It listens before it returns, so that a taken
// address stops the command at once instead of only showing in the log; a later
// failure is logged as the name server's.
func serveWithMetrics(addr, flagName, name string, mux *http.ServeMux, reg prometheus.Gatherer, log *slog.Logger) (*http.Server, net.Addr, error) {
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s for %s: %w", addr, flagName, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(name+" server stopped", "err", err)
		}
	}()
	return srv, ln.Addr(), nil
}
