package main

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// errIdle means a virtual user has nothing to do right now (every device waits for the
// next time step); errExhausted that it never will (every device was removed).
var (
	errIdle      = errors.New("idle")
	errExhausted = errors.New("exhausted")
)

// vu is a virtual user: one connection's worth of load over its own share of the users.
type vu struct {
	c      *client
	users  []*loadUser
	next   int
	rng    *rand.Rand
	events *eventWatch
}

// op runs one request of a scenario.
type op func(ctx context.Context, v *vu) (result, error)

// scenarios by name. Write scenarios tell the event watch which event each success
// must produce, to measure the reply-to-event lag and count lost events.
var scenarios = map[string]op{
	"healthz": func(ctx context.Context, v *vu) (result, error) {
		return v.c.do(ctx, http.MethodGet, "/healthz", "", ""), nil
	},
	"status": func(ctx context.Context, v *vu) (result, error) {
		u := v.pick()
		tok, err := u.tokenFor(v.c)
		return v.c.do(ctx, http.MethodGet, "/api/v1/mfa/status", tok, ""), err
	},
	"list-devices": func(ctx context.Context, v *vu) (result, error) {
		u := v.pick()
		tok, err := u.tokenFor(v.c)
		return v.c.do(ctx, http.MethodGet, "/api/v1/mfa/totp/devices", tok, ""), err
	},
	"setup": func(ctx context.Context, v *vu) (result, error) {
		u := v.pick()
		tok, err := u.tokenFor(v.c)
		if err != nil {
			return result{}, err
		}
		r := v.c.do(ctx, http.MethodPost, "/api/v1/mfa/totp/setup", tok, `{"device_name":"load"}`)
		if r.status == 200 {
			var id int64
			if dataFields(r.body, map[string]any{"device_id": &id}) == nil {
				v.events.expect("totp.device_set_up|"+strconv.FormatInt(id, 10), r.at)
			}
		}
		return r, nil
	},
	"verify": func(ctx context.Context, v *vu) (result, error) {
		now := time.Now()
		for range v.users {
			u := v.pick()
			for _, d := range u.Devices {
				s, ok := d.nextStep(now)
				if !ok {
					continue
				}
				tok, err := u.tokenFor(v.c)
				if err != nil {
					return result{}, err
				}
				r := v.c.do(ctx, http.MethodPost, "/api/v1/mfa/verify", tok, `{"code":"`+code(d.Secret, s)+`"}`)
				if r.status == 200 {
					d.accepted(s, r.at)
					v.events.expect("verify.succeeded|"+u.ID+"|"+strconv.FormatInt(d.ID, 10), r.at)
				}
				return r, nil
			}
		}
		return result{}, errIdle
	},
	"delete-device": func(ctx context.Context, v *vu) (result, error) {
		u := v.pickWithDevice()
		if u == nil {
			return result{}, errExhausted
		}
		tok, err := u.tokenFor(v.c)
		if err != nil {
			return result{}, err
		}
		d := u.Devices[len(u.Devices)-1]
		r := v.c.do(ctx, http.MethodDelete, "/api/v1/mfa/totp/devices/"+strconv.FormatInt(d.ID, 10), tok, "")
		if r.status == 200 {
			u.Devices = u.Devices[:len(u.Devices)-1]
			v.events.expect("totp.device_removed|"+strconv.FormatInt(d.ID, 10), r.at)
		}
		return r, nil
	},
	"druid-delete": func(ctx context.Context, v *vu) (result, error) {
		u := v.pickWithDevice()
		if u == nil {
			return result{}, errExhausted
		}
		tok, err := u.tokenFor(v.c)
		if err != nil {
			return result{}, err
		}
		r := v.c.do(ctx, http.MethodPost, "/activityid/v1/mfa/delete", tok, druidDelete(u.ID), "From", "mfaload")
		if r.status == 200 {
			u.Devices = nil
			v.events.expect("channel.deleted|"+u.ID, r.at)
		}
		return r, nil
	},
}

// scenarioPairs names, for each write scenario, the event types its replies wait for
// (eventRecord.key): the event watch reads the bodies of those only. A type missing
// here shows as lost events.
var scenarioPairs = map[string][]string{
	"setup":         {"totp.device_set_up"},
	"verify":        {"verify.succeeded"},
	"delete-device": {"totp.device_removed"},
	"druid-delete":  {"channel.deleted"},
}

// mix is the "mixed" scenario: a day of traffic, mostly reads.
var mix = []struct {
	name   string
	weight int
}{
	{"status", 40}, {"list-devices", 25}, {"verify", 20}, {"setup", 5}, {"delete-device", 5}, {"druid-delete", 5},
}

func init() {
	total := 0
	for _, m := range mix {
		total += m.weight
		scenarioPairs["mixed"] = append(scenarioPairs["mixed"], scenarioPairs[m.name]...)
	}
	scenarios["mixed"] = func(ctx context.Context, v *vu) (result, error) {
		n := v.rng.IntN(total)
		for _, m := range mix {
			if n < m.weight {
				r, err := scenarios[m.name](ctx, v)
				if errors.Is(err, errExhausted) || errors.Is(err, errIdle) {
					return scenarios["status"](ctx, v)
				}
				return r, err
			}
			n -= m.weight
		}
		return result{}, nil
	}
}

// consumes reports whether a scenario removes devices (the pool is topped up first).
func consumes(name string) bool {
	return name == "delete-device" || name == "druid-delete" || name == "mixed"
}

func (v *vu) pick() *loadUser {
	u := v.users[v.next%len(v.users)]
	v.next++
	return u
}

func (v *vu) pickWithDevice() *loadUser {
	for range v.users {
		if u := v.pick(); len(u.Devices) > 0 {
			return u
		}
	}
	return nil
}

// eventRecord is the part of an MFA_EVENTS message the watch reads.
type eventRecord struct {
	ID     string `json:"id"`
	Event  string `json:"mfa:event"`
	User   string `json:"mfa:user"`
	Object struct {
		ID string `json:"id"`
	} `json:"object"`
}

// key names the reply an event answers, or "" when the tool does not wait for it.
func (e eventRecord) key() string {
	switch e.Event {
	case "totp.device_removed", "totp.device_set_up":
		return e.Event + "|" + e.Object.ID
	case "channel.deleted":
		return e.Event + "|" + e.User
	case "verify.succeeded":
		return e.Event + "|" + e.User + "|" + e.Object.ID
	}
	return ""
}

func parseEvent(b []byte) (eventRecord, error) {
	var e eventRecord
	err := json.Unmarshal(b, &e)
	return e, err
}
