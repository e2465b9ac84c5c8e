package main

import (
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
)

// loadUser is one seeded user and what the tool knows of their devices. A user belongs
// to one virtual user at a time, so no locking is needed.
type loadUser struct {
	ID      string
	Devices []*loadDevice
	token   string
}

type loadDevice struct {
	ID       int64
	Secret   string
	LastStep int64 // the last time step the server accepted for it
}

// tokenFor caches the user's token.
func (u *loadUser) tokenFor(c *client) (string, error) {
	if u.token == "" {
		t, err := c.token(u.ID)
		if err != nil {
			return "", err
		}
		u.token = t
	}
	return u.token, nil
}

func step(t time.Time) int64 { return t.Unix() / 30 }

// code is the TOTP code of a device at a time step.
func code(secret string, s int64) string {
	c, _ := hotp.GenerateCodeCustom(secret, uint64(s), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	return c
}

// nextStep is the next time step the server will accept for d (within ±1 of now and
// after its last accepted one), or false when d must wait for the clock. The step
// before now is used only early in a step: near its end the server's clock may
// already be one step on, and the code would fall out of its window.
func (d *loadDevice) nextStep(now time.Time) (int64, bool) {
	lowest := step(now)
	if now.Unix()%30 < 20 {
		lowest--
	}
	s := max(d.LastStep+1, lowest)
	return s, s <= step(now)+1
}

// accepted records that the server took d's code of step s, answered at at. The
// server matches a code to the latest step of its window (its now ±1) whose code it
// is, and that is the step it uses up: when a later step's code is the same six digits
// (about one step pair in a million), that later step is gone too, and sending its
// code would be refused as a replay (verify.replayed, 400), rightly. The server's
// window ends at most one step after the answer's, so every later step up to there
// with the same code counts as used.
func (d *loadDevice) accepted(s int64, at time.Time) {
	c := code(d.Secret, s)
	last := s
	for t := s + 1; t <= step(at)+1; t++ {
		if code(d.Secret, t) == c {
			last = t
		}
	}
	d.LastStep = max(d.LastStep, last)
}

// enrol sets up and verifies one TOTP device for u.
func enrol(ctx context.Context, c *client, u *loadUser) error {
	tok, err := u.tokenFor(c)
	if err != nil {
		return err
	}
	r := c.do(ctx, http.MethodPost, "/api/v1/mfa/totp/setup", tok, `{"device_name":"load"}`)
	if r.status == http.StatusConflict { // devices the tool does not know of: start over
		r = c.do(ctx, http.MethodPost, "/activityid/v1/mfa/delete", tok, druidDelete(u.ID), "From", "mfaload")
		if r.status != 200 && r.status != 417 {
			return fmt.Errorf("reset %s: status %d %s", u.ID, r.status, r.body)
		}
		u.Devices = nil
		r = c.do(ctx, http.MethodPost, "/api/v1/mfa/totp/setup", tok, `{"device_name":"load"}`)
	}
	if r.status != 200 {
		return fmt.Errorf("setup for %s: status %d %s", u.ID, r.status, r.body)
	}
	d := &loadDevice{LastStep: -1}
	if err := dataFields(r.body, map[string]any{"device_id": &d.ID, "secret": &d.Secret}); err != nil {
		return fmt.Errorf("setup answer: %w", err)
	}
	s, _ := d.nextStep(time.Now())
	r = c.do(ctx, http.MethodPost, "/api/v1/mfa/totp/verify", tok,
		`{"code":"`+code(d.Secret, s)+`","device_id":`+strconv.FormatInt(d.ID, 10)+`}`)
	if r.status != 200 {
		return fmt.Errorf("verify for %s: status %d %s", u.ID, r.status, r.body)
	}
	d.accepted(s, r.at)
	u.Devices = append(u.Devices, d)
	return nil
}

func druidDelete(user string) string {
	return `{"actor":{"id":"` + user + `","objectType":"person"},"verb":"delete","object":{"objectType":"user"},` +
		`"source":{"id":"pc","objectType":"device"},"context":{"mfa_channel":"totp"}}`
}

// topUp enrols devices until every user has perUser of them, with conns requests in
// flight, printing progress to w.
func topUp(ctx context.Context, c *client, users []*loadUser, perUser, conns int, w io.Writer) error {
	var todo []*loadUser
	missing := 0
	for _, u := range users {
		if n := perUser - len(u.Devices); n > 0 {
			todo = append(todo, u)
			missing += n
		}
	}
	if missing == 0 {
		return nil
	}
	start := time.Now()
	var (
		done    atomic.Int64
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(todo)) || ctx.Err() != nil {
					return
				}
				u := todo[i]
				for len(u.Devices) < perUser {
					if err := enrol(ctx, c, u); err != nil {
						errOnce.Do(func() { first = err; cancel() })
						return
					}
					done.Add(1)
				}
			}
		}()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	for {
		select {
		case <-finished:
			fmt.Fprintf(w, "\rseeded %d devices in %s%20s\n", done.Load(), time.Since(start).Round(time.Millisecond), "")
			return first
		case <-tick.C:
			fmt.Fprintf(w, "\rseeding: %d/%d devices", done.Load(), missing)
		}
	}
}

// makeUsers names n users load-0 … load-(n-1).
func makeUsers(n int) []*loadUser {
	users := make([]*loadUser, n)
	for i := range users {
		users[i] = &loadUser{ID: "load-" + strconv.Itoa(i)}
	}
	return users
}

// saveState and loadState keep the seeded users between runs against the same data dir.
func saveState(path string, users []*loadUser) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := gob.NewEncoder(f).Encode(users); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func loadState(path string, n int) ([]*loadUser, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return makeUsers(n), nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var users []*loadUser
	if err := gob.NewDecoder(f).Decode(&users); err != nil {
		return nil, fmt.Errorf("read state %s: %w", path, err)
	}
	if len(users) < n {
		users = append(users, makeUsers(n)[len(users):]...)
	}
	return users[:n], nil
}
