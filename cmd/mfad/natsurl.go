package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/mfad/mfad/activity"
)

const natsURLAbout = `Prints the URL of the embedded NATS server for an outside user, with its password
(from the NATS users file, created on first use like 'mfad serve' does):
  gateway   reads MFA_NOTIFY (durable consumer mfad-gateway), publishes mfa.gateway.dead.>
  auditor   reads mfa.events.> and MFA_EVENTS, discovers the mfa service ($SRV)
  producer  publishes DruID activities on mfa.activity.>
Each user has a NATS account of its own; JetStream is reached through domain "mfad":
  nats sub -s "$(mfad nats-url --role auditor)" 'mfa.events.>'
  nats micro ls -s "$(mfad nats-url --role auditor)"
  nats stream info MFA_EVENTS --js-domain mfad -s "$(mfad nats-url --role auditor)"
  mfad audit tail --nats-url "$(mfad nats-url --role auditor)"
The URL holds a password: treat it as one.
`

// runNATSURL: mfad nats-url --role gateway|auditor|producer [--data-dir] [--nats-listen]
// [--nats-users-file].
func runNATSURL(args []string, getenv func(string) string, stdout io.Writer) error {
	var (
		cfg  Config
		role string
	)
	fs := flag.NewFlagSet("nats-url", flag.ContinueOnError)
	fs.StringVar(&cfg.DataDir, "data-dir", "./data", "directory holding the NATS users file")
	fs.StringVar(&cfg.NATSListen, "nats-listen", "127.0.0.1:4222", "client listen address of the embedded NATS server")
	fs.StringVar(&cfg.NATSUsersFile, "nats-users-file", "", "NATS users file; empty = <data-dir>/nats-users.json")
	annotateEnv(fs)
	fs.StringVar(&role, "role", "", "the user: "+strings.Join(activity.OutsideUsers, ", ")+" (required)")
	if err := parseFlagsAbout(fs, args, getenv, stdout, natsURLAbout); err != nil {
		return err
	}
	if !slices.Contains(activity.OutsideUsers, role) {
		return usageError{fmt.Sprintf("nats-url: --role must be %s, not %q", strings.Join(activity.OutsideUsers, ", "), role)}
	}
	host, port, err := net.SplitHostPort(cfg.NATSListen)
	if err != nil {
		return usageError{fmt.Sprintf("nats-url: --nats-listen %q: %v", cfg.NATSListen, err)}
	}
	if port == "0" {
		return usageError{"nats-url: --nats-listen has port 0 (a random port): give the address the server logged as \"embedded NATS listening\""}
	}
	// A server listening on every interface is reached on this host through loopback.
	switch host {
	case "", "0.0.0.0", "::":
		host = "127.0.0.1"
	}
	users, err := cfg.natsUsers()
	if err != nil {
		return err
	}
	pw, ok := users[role]
	if !ok {
		return fmt.Errorf("nats-url: the NATS users file has no user %s", role)
	}
	u := url.URL{Scheme: "nats", User: url.UserPassword(role, pw), Host: net.JoinHostPort(host, port)}
	fmt.Fprintln(stdout, u.String())
	return nil
}
