package activity

import (
	"encoding/json"
	"fmt"
	"time"

	mfa "github.com/mfad/mfad"
)

// AS2Context is the JSON-LD context of every event (API.md §4).
const AS2Context = "https://www.w3.org/ns/activitystreams"

// EncodeEvent renders an event as the Activity Streams 2.0 activity published on
// MFA_EVENTS. seq is its audit sequence number. The result never holds a secret, a code
// or a full address: channels put only masked values into events.
func EncodeEvent(ev mfa.Event, seq int64) ([]byte, error) {
	kind, ok := mfa.EventCatalogue[ev.Type]
	if !ok {
		return nil, fmt.Errorf("encode event: unknown event type %q", ev.Type)
	}
	doc := map[string]any{
		"@context":  AS2Context,
		"id":        "urn:uuid:" + ev.ID,
		"type":      kind.AS2Type,
		"summary":   fmt.Sprintf("%s: %s", ev.Actor, kind.When),
		"actor":     map[string]string{"type": "Person", "id": ev.Actor},
		"object":    ev.Object,
		"published": ev.Time.UTC().Format(time.RFC3339Nano),
		"mfa:event": ev.Type,
		"mfa:seq":   seq,
		"mfa:user":  ev.UserID,
	}
	methods := map[string]string{"type": "Collection", "id": "urn:mfad:user:" + ev.UserID + ":methods"}
	switch kind.AS2Type {
	case "Remove", "Delete":
		doc["origin"] = methods
	case "Add", "Create":
		doc["target"] = methods
	}
	if ev.Source != "" {
		doc["instrument"] = map[string]string{"type": "Service", "name": ev.Source}
	}
	if ev.EntryPoint != "" {
		doc["generator"] = map[string]string{"type": "Application", "id": ev.EntryPoint}
	}
	for k, v := range ev.Detail {
		doc["mfa:"+k] = v
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", ev.Type, err)
	}
	return body, nil
}
