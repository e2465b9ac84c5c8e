package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mfad/mfad/activity"
)

// natsUsersFile is the generated file of the outside NATS users' passwords in the data
// dir: {"gateway": "…", "auditor": "…", "producer": "…"}.
const natsUsersFile = "nats-users.json"

// internalNATSUser is the embedded server's user for mfad's own in-process clients. Its
// password is new at every start and only ever held in memory.
const internalNATSUser = "mfad"

// natsUsers maps an outside user (activity.OutsideUsers) to its password. A user not
// in the map does not exist on the embedded server.
type natsUsers map[string]string

// natsUsers reads --nats-users-file, or the generated file in the data dir, creating it
// with a random password for every outside user on first use.
func (c *Config) natsUsers() (natsUsers, error) {
	if c.NATSUsersFile != "" {
		return readNATSUsers(c.NATSUsersFile)
	}
	path := filepath.Join(c.DataDir, natsUsersFile)
	if users, err := readNATSUsers(path); !errors.Is(err, fs.ErrNotExist) {
		return users, err
	}
	users := natsUsers{}
	for _, u := range activity.OutsideUsers {
		users[u] = randomPassword()
	}
	b, err := json.MarshalIndent(users, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode NATS users: %w", err)
	}
	if _, err := createOnce(c.DataDir, natsUsersFile, append(b, '\n')); err != nil {
		return nil, fmt.Errorf("create NATS users file: %w", err)
	}
	// Read it back either way: another process starting at once may have been first.
	return readNATSUsers(path)
}

func readNATSUsers(path string) (natsUsers, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("read NATS users file: %w", err)
	}
	var users natsUsers
	if err := json.Unmarshal(b, &users); err != nil {
		return nil, fmt.Errorf("NATS users file %s: not a JSON object of user names and passwords: %w", path, err)
	}
	for user, pw := range users {
		if !slices.Contains(activity.OutsideUsers, user) {
			return nil, fmt.Errorf("NATS users file %s: unknown user %q (want %s)", path, user, strings.Join(activity.OutsideUsers, ", "))
		}
		if !goodPassword(pw) {
			return nil, fmt.Errorf("NATS users file %s: the password of %s must be 16 to 128 of A-Z a-z 0-9 - . _ ~", path, user)
		}
	}
	return users, nil
}

// goodPassword: long enough not to be guessed, and characters that need no quoting in a
// URL or in nats-server's configuration.
func goodPassword(pw string) bool {
	if len(pw) < 16 || len(pw) > 128 {
		return false
	}
	for _, r := range pw {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~", r)) {
			return false
		}
	}
	return true
}

// randomPassword is 192 random bits, base64url: URL- and configuration-safe. It starts
// with a letter: nats-server reads the value of a $VARIABLE in its configuration as a
// number when it starts with a digit, and refuses to start.
func randomPassword() string {
	b := make([]byte, 24)
	for {
		_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
		p := base64.RawURLEncoding.EncodeToString(b)
		if c := p[0]; c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			return p
		}
	}
}

// confUser is one user of a rendered NATS configuration. password is a configuration
// value as written: a quoted string, or a $VARIABLE nats-server reads from its
// environment.
type confUser struct {
	grant    activity.Grant
	password string
	full     bool // mfad's in-process user: no permissions
}

// natsAccountsConfig renders the accounts block of a nats-server configuration: the
// MFAD account (JetStream, mfad's users, the exports) and one account per outside
// user, importing what its grant names. The embedded server runs exactly this, and
// README shows it for an external server (TestReadmeNATSConfig keeps the two equal).
func natsAccountsConfig(users []confUser) string {
	var b strings.Builder
	w := func(indent int, format string, args ...any) {
		b.WriteString(strings.Repeat("  ", indent))
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}
	type export struct {
		kind, subject string
		stream        bool
		accounts      []string
	}
	var exports []*export
	exported := func(kind, subject string, stream bool, account string) {
		for _, e := range exports {
			if e.kind == kind && e.subject == subject && e.stream == stream {
				e.accounts = append(e.accounts, account)
				return
			}
		}
		exports = append(exports, &export{kind, subject, stream, []string{account}})
	}
	for _, u := range users {
		for _, s := range u.grant.Streams {
			exported("stream", s, false, u.grant.Account)
		}
		for _, i := range u.grant.Services {
			exported("service", i.Subject, i.Stream, u.grant.Account)
		}
	}

	w(0, "accounts {")
	w(1, "%s {", activity.MFADAccount)
	w(2, "jetstream: enabled")
	w(2, "users: [")
	for _, u := range users {
		if u.grant.Account == activity.MFADAccount {
			writeUser(w, 3, u)
		}
	}
	w(2, "]")
	w(2, "exports: [")
	for _, e := range exports {
		rt := ""
		if e.stream {
			rt = ", response_type: stream"
		}
		w(3, "{%s: %q%s, accounts: [%s]}", e.kind, e.subject, rt, strings.Join(e.accounts, ", "))
	}
	w(2, "]")
	w(1, "}")
	for _, u := range users {
		if u.grant.Account == activity.MFADAccount {
			continue
		}
		w(1, "%s {", u.grant.Account)
		w(2, "users: [")
		writeUser(w, 3, u)
		w(2, "]")
		w(2, "imports: [")
		for _, s := range u.grant.Streams {
			w(3, "{stream: {account: %s, subject: %q}}", activity.MFADAccount, s)
		}
		for _, i := range u.grant.Services {
			to := ""
			if i.Local != "" {
				to = fmt.Sprintf(", to: %q", i.Local)
			}
			w(3, "{service: {account: %s, subject: %q}%s}", activity.MFADAccount, i.Subject, to)
		}
		w(2, "]")
		w(1, "}")
	}
	w(0, "}")
	return b.String()
}

func writeUser(w func(int, string, ...any), indent int, u confUser) {
	if u.full {
		w(indent, "{user: %s, password: %s}", u.grant.User, u.password)
		return
	}
	g := u.grant
	w(indent, "{user: %s, password: %s, permissions: {", g.User, u.password)
	w(indent+1, "publish: {allow: %s%s}", confList(g.Publish), optional(", deny: ", g.DenyPublish))
	w(indent+1, "subscribe: {allow: %s}", confList(g.Subscribe))
	if g.Responses {
		w(indent+1, "allow_responses: true")
	}
	w(indent, "}}")
}

func optional(prefix string, list []string) string {
	if len(list) == 0 {
		return ""
	}
	return prefix + confList(list)
}

func confList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// embeddedNATSConfig is the embedded server's accounts: mfad's in-process user, with
// the password of this start, and the outside users of users.
func embeddedNATSConfig(internalPassword string, users natsUsers) string {
	list := []confUser{{grant: activity.Grant{User: internalNATSUser, Account: activity.MFADAccount},
		password: fmt.Sprintf("%q", internalPassword), full: true}}
	for _, u := range activity.OutsideUsers {
		if pw, ok := users[u]; ok {
			g, _ := activity.GrantOf(u)
			list = append(list, confUser{grant: g, password: fmt.Sprintf("%q", pw)})
		}
	}
	return natsAccountsConfig(list)
}

// externalNATSConfig is the configuration README shows for an external nats-server:
// every grant, each password read from an environment variable ($MFAD_NATS_API_PASSWORD…).
func externalNATSConfig() string {
	var list []confUser
	for _, g := range activity.Grants() {
		list = append(list, confUser{grant: g, password: "$" + passwordVar(g.User)})
	}
	return natsAccountsConfig(list)
}

// passwordVar is the environment variable the README configuration reads a user's
// password from.
func passwordVar(user string) string { return "MFAD_NATS_" + strings.ToUpper(user) + "_PASSWORD" }
