package activity

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"

	mfa "github.com/mfad/mfad"
)

// AS2Context is the JSON-LD context of every event (API.md §4).
const AS2Context = "https://www.w3.org/ns/activitystreams"

// ExtensionPrefix starts every member of an event that Activity Streams does not define.
// The mfa: members are plain JSON names to a consumer that ignores JSON-LD.
const ExtensionPrefix = "mfa:"

// publishedLayout writes milliseconds, the precision of audit_log.created_at, so the
// body and the row always state the same instant.
const publishedLayout = "2006-01-02T15:04:05.000Z07:00"

// as2Ref is a typed reference: actor, instrument, generator, origin, target.
type as2Ref struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// as2Event is the activity of API.md §4, its members in the order the contract lists
// them. A struct, not a map, so the encoder cannot emit a member by accident and the
// output is byte-for-byte deterministic.
type as2Event struct {
	Context    string          `json:"@context"`
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Summary    string          `json:"summary"`
	Actor      as2Ref          `json:"actor"`
	Object     mfa.EventObject `json:"object"`
	Origin     *as2Ref         `json:"origin,omitempty"`
	Target     *as2Ref         `json:"target,omitempty"`
	Instrument *as2Ref         `json:"instrument,omitempty"`
	Generator  *as2Ref         `json:"generator,omitempty"`
	Published  string          `json:"published"`
	Event      string          `json:"mfa:event"`
	Seq        int64           `json:"mfa:seq"`
	User       string          `json:"mfa:user"`
}

// reservedDetail are the extension members the encoder writes itself; a detail must
// not overwrite them.
var reservedDetail = map[string]bool{"event": true, "seq": true, "user": true}

// EncodeEvent renders an event as the Activity Streams 2.0 activity published on
// MFA_EVENTS. seq is its audit sequence number. Members:
//
//   - @context, id (urn:uuid:<event id>), type (the catalogue's AS2 type), summary;
//   - actor: the Person who caused it (the user, or the admin acting for them);
//   - object: what it is about (device, channel, backup codes, sign-in flag);
//   - origin (Remove, Delete) or target (Add, Create): the user's collection of methods;
//   - instrument: the DruID source device, as a Service named pc, mobile…, when known;
//   - generator: the entry point (From header), as an Application, when known;
//   - published; and the extensions mfa:event (the catalogue type), mfa:seq (audit
//     sequence), mfa:user (whose factors), then one mfa:<key> per Detail entry.
//
// The result never holds a secret, a code or a full address: channels put only masked
// values into events, and nothing but the members above is ever written.
func EncodeEvent(ev mfa.Event, seq int64) ([]byte, error) {
	kind, ok := mfa.EventCatalogue[ev.Type]
	if !ok {
		return nil, fmt.Errorf("encode event: unknown event type %q", ev.Type)
	}
	if !canonicalUUID(ev.ID) {
		// The id is also the Nats-Msg-Id that dedupes the stream and the key of every
		// sink: it must be the UUID the urn:uuid: name promises.
		return nil, fmt.Errorf("encode event %s: id %q is not a canonical UUID", ev.Type, ev.ID)
	}
	doc := newAS2Event(ev, seq, kind)
	body := doc.appendJSON(make([]byte, 0, 768)) // an event is 500–600 bytes
	if len(ev.Detail) == 0 {
		return body, nil
	}
	return appendDetail(body, ev)
}

// newAS2Event is the activity of ev at seq, of the catalogue's kind.
func newAS2Event(ev mfa.Event, seq int64, kind mfa.EventKind) as2Event {
	doc := as2Event{
		Context:   AS2Context,
		ID:        "urn:uuid:" + ev.ID,
		Type:      kind.AS2Type,
		Summary:   summary(ev, kind),
		Actor:     as2Ref{Type: "Person", ID: ev.Actor},
		Object:    ev.Object,
		Published: ev.Time.UTC().Format(publishedLayout),
		Event:     ev.Type,
		Seq:       seq,
		User:      ev.UserID,
	}
	switch kind.AS2Type {
	case "Remove", "Delete":
		doc.Origin = methodsOf(ev.UserID)
	case "Add", "Create":
		doc.Target = methodsOf(ev.UserID)
	}
	if ev.Source != "" {
		doc.Instrument = &as2Ref{Type: "Service", Name: ev.Source}
	}
	if ev.EntryPoint != "" {
		doc.Generator = &as2Ref{Type: "Application", ID: ev.EntryPoint}
	}
	return doc
}

// appendJSON appends d as json.Marshal writes it: the members in the struct's order,
// the absent references left out. Every write command links one to seven events, and
// json.Marshal's reflection was half of an event's encoding time
// (TestAS2EventEncodingIsMarshal and FuzzAS2EventEncoding hold the two equal).
func (d *as2Event) appendJSON(b []byte) []byte {
	b = append(b, `{"@context":`...)
	b = mfa.AppendJSONString(b, d.Context)
	b = append(b, `,"id":`...)
	b = mfa.AppendJSONString(b, d.ID)
	b = append(b, `,"type":`...)
	b = mfa.AppendJSONString(b, d.Type)
	b = append(b, `,"summary":`...)
	b = mfa.AppendJSONString(b, d.Summary)
	b = append(b, `,"actor":`...)
	b = appendRef(b, d.Actor.Type, d.Actor.ID, d.Actor.Name)
	b = append(b, `,"object":`...)
	b = appendRef(b, d.Object.Type, d.Object.ID, d.Object.Name)
	for _, m := range [...]struct {
		name string
		ref  *as2Ref
	}{{"origin", d.Origin}, {"target", d.Target}, {"instrument", d.Instrument}, {"generator", d.Generator}} {
		if m.ref != nil {
			b = append(b, ',', '"')
			b = append(b, m.name...)
			b = append(b, '"', ':')
			b = appendRef(b, m.ref.Type, m.ref.ID, m.ref.Name)
		}
	}
	b = append(b, `,"published":`...)
	b = mfa.AppendJSONString(b, d.Published)
	b = append(b, `,"mfa:event":`...)
	b = mfa.AppendJSONString(b, d.Event)
	b = append(b, `,"mfa:seq":`...)
	b = strconv.AppendInt(b, d.Seq, 10)
	b = append(b, `,"mfa:user":`...)
	b = mfa.AppendJSONString(b, d.User)
	return append(b, '}')
}

// appendRef appends a typed reference (as2Ref, mfa.EventObject): type, then id and
// name when set.
func appendRef(b []byte, typ, id, name string) []byte {
	b = append(b, `{"type":`...)
	b = mfa.AppendJSONString(b, typ)
	b = mfa.AppendJSONField(b, "id", id)
	b = mfa.AppendJSONField(b, "name", name)
	return append(b, '}')
}

// appendDetail splices the Detail entries into the encoded object as mfa:<key>
// members, in key order so equal events encode equally.
func appendDetail(body []byte, ev mfa.Event) ([]byte, error) {
	keys := make([]string, 0, len(ev.Detail))
	for k := range ev.Detail {
		if !detailKey(k) || reservedDetail[k] {
			return nil, fmt.Errorf("encode event %s: detail key %q is not allowed", ev.Type, k)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b := body[:len(body)-1] // drop the closing brace
	for _, k := range keys {
		v, err := json.Marshal(ev.Detail[k])
		if err != nil {
			return nil, fmt.Errorf("encode event %s detail %s: %w", ev.Type, k, err)
		}
		b = append(b, `,"`+ExtensionPrefix...)
		b = append(b, k...)
		b = append(b, '"', ':')
		b = append(b, v...)
	}
	return append(b, '}'), nil
}

// detailKey accepts lower-case snake_case names: they need no JSON escaping and read
// as one vocabulary with mfa:event and mfa:seq.
func detailKey(k string) bool {
	if k == "" || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// summary is the one English line a feed shows: who, for whom, what happened.
func summary(ev mfa.Event, kind mfa.EventKind) string {
	if ev.Actor != ev.UserID && ev.UserID != "" {
		return fmt.Sprintf("%s for %s: %s", ev.Actor, ev.UserID, kind.When)
	}
	return fmt.Sprintf("%s: %s", ev.Actor, kind.When)
}

// methodsOf is the collection of a user's methods, the origin of a removal and the
// target of an addition. The user id is escaped: it is opaque and may hold '/', '?' or spaces.
func methodsOf(userID string) *as2Ref {
	return &as2Ref{Type: "Collection", ID: "urn:mfad:user:" + url.PathEscape(userID) + ":methods"}
}

// canonicalUUID accepts the lower-case 8-4-4-4-12 form mfa.NewID writes.
func canonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}
