package activity

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"

	mfa "github.com/mfad/mfad"
)

// DruID verbs, one per endpoint and per mfa.activity.<verb> subject.
const (
	VerbDelete   = "delete"
	VerbUpdate   = "update"
	VerbValidate = "validate"
)

// Sources are the source.id values DruID documents.
var Sources = []string{"unknown", "pc", "mobile", "tablet", "game_console", "itv"}

// Activity is a validated DruID activity.
type Activity struct {
	ID      string   // the activity's own id, when it has one
	Verb    string   // delete, update or validate
	ActorID string   // the user
	Source  string   // source.id: the device the user acts from
	Channel mfa.Kind // context.mfa_channel
	Address string   // context.mfa_channel_address (update)
	Code    string   // context.mfa_code (validate)
}

// Parse validates a DruID Activity Streams 1.0 activity for verb (the endpoint's or the
// subject's). It reports every broken rule, each naming its field by JSON path. As the
// AS2 specification asks of consumers, the AS2 names are accepted too: "type" for "verb"
// and for "objectType", "name" for "displayName"; verbs and objectType values are
// compared without regard to case ("Person" is "person", "Delete" is "delete").
func Parse(body []byte, verb string) (Activity, error) {
	var p Problems
	// JSON text is UTF-8 (RFC 8259 §8.1); encoding/json would turn other bytes in a
	// string into U+FFFD and the activity would go through.
	if !utf8.Valid(body) {
		p.add("body", mfa.ReasonSyntax)
		return Activity{}, p.err()
	}
	root := p.object(body, "body")
	if root == nil {
		return Activity{}, p.err()
	}
	var a Activity
	a.ID, _ = p.optionalString(root, "id", "id")

	// An AS2 producer names the activity type capitalised ("Delete", "Update"), so the
	// verb, like objectType, is compared without regard to case.
	if v, ok := p.str(root, "verb", "verb", "type"); ok {
		if strings.EqualFold(v, verb) {
			a.Verb = verb
		} else {
			p.add("verb", mfa.ReasonMismatch)
		}
	}

	if actor := p.object(field(root, "actor"), "actor"); actor != nil {
		// The workers' user-id rule, here too: an id they would refuse is a field
		// error of the activity, not a command that fails every time it is tried.
		switch id, ok := p.str(actor, "actor.id", "id"); {
		case !ok:
		case utf8.RuneCountInString(id) > 128:
			p.add("actor.id", mfa.ReasonLength)
		case !mfa.ValidUserID(id):
			p.add("actor.id", mfa.ReasonFormat)
		default:
			a.ActorID = id
		}
		p.objectType(actor, "actor", "person")
	}
	if obj := p.object(field(root, "object"), "object"); obj != nil {
		p.objectType(obj, "object", "user")
	}
	if src := p.object(field(root, "source"), "source"); src != nil {
		if id, ok := p.str(src, "source.id", "id"); ok {
			if !contains(Sources, id) {
				p.add("source.id", mfa.ReasonEnum)
			} else {
				a.Source = id
			}
		}
		p.objectType(src, "source", "device")
	}
	if ctx := p.object(field(root, "context"), "context"); ctx != nil {
		if ch, ok := p.str(ctx, "context.mfa_channel", "mfa_channel"); ok {
			kind, known := mfa.ParseKind(ch)
			switch {
			case !known:
				p.add("context.mfa_channel", mfa.ReasonEnum)
			case !kind.Rules().Address && verb != VerbDelete:
				// TOTP devices and WebAuthn credentials are set up through the other
				// dialects (a secret, a browser ceremony); DruID can only remove them.
				p.add("context.mfa_channel", mfa.ReasonEnum)
			default:
				a.Channel = kind
			}
		}
		switch verb {
		case VerbUpdate:
			if addr, ok := p.str(ctx, "context.mfa_channel_address", "mfa_channel_address"); ok && a.Channel != "" &&
				!mfa.ValidAddress(a.Channel, addr) {
				p.add("context.mfa_channel_address", mfa.ReasonFormat)
			} else {
				a.Address = addr
			}
		case VerbValidate:
			if code, ok := p.str(ctx, "context.mfa_code", "mfa_code"); ok && !sixDigits(code) {
				p.add("context.mfa_code", mfa.ReasonFormat)
			} else {
				a.Code = code
			}
		}
	}
	if err := p.err(); err != nil {
		return Activity{}, err
	}
	return a, nil
}

// Command translates a valid activity into the worker command it asks for.
func (a Activity) Command(o Origin) (mfa.Command, error) {
	params := mfa.ChannelParams{Channel: a.Channel, Address: a.Address, Code: a.Code}
	o.Source = a.Source
	return NewCommand(CommandType(a.Verb), o, params)
}

// CommandType is the worker command a DruID verb asks for.
func CommandType(verb string) string {
	switch verb {
	case VerbUpdate:
		return mfa.CmdChannelRegister
	case VerbValidate:
		return mfa.CmdChannelValidate
	}
	return mfa.CmdChannelDelete
}

func sixDigits(s string) bool {
	return len(s) == 6 && strings.Trim(s, "0123456789") == ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Problems collects the field errors of one activity.
type Problems struct{ list mfa.Problems }

func (p *Problems) add(field, reason string) {
	code := mfa.CodeValidation
	if reason == mfa.ReasonType || reason == mfa.ReasonSyntax {
		code = mfa.CodeMalformed
	}
	p.list = append(p.list, &mfa.Error{Code: code, Field: field, Reason: reason})
}

func (p *Problems) err() error { return p.list.Err() }

type jsonObject map[string]json.RawMessage

func field(o jsonObject, key string) json.RawMessage { return o[key] }

// object decodes raw as a JSON object, reporting a missing or null one as required and
// anything else as the wrong type.
func (p *Problems) object(raw json.RawMessage, name string) jsonObject {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		p.add(name, mfa.ReasonRequired)
		return nil
	}
	if raw[0] != '{' {
		if name == "body" && !json.Valid(raw) {
			p.add(name, mfa.ReasonSyntax)
		} else {
			p.add(name, mfa.ReasonType)
		}
		return nil
	}
	var o jsonObject
	if err := json.Unmarshal(raw, &o); err != nil {
		p.add(name, mfa.ReasonSyntax)
		return nil
	}
	return o
}

// str reads a required, non-empty string member under any of its names (the AS1 name
// first, then the AS2 alias).
func (p *Problems) str(o jsonObject, name string, keys ...string) (string, bool) {
	s, present := p.optionalString(o, name, keys...)
	switch {
	case p.reported(name): // the wrong type, already said
		return "", false
	case !present || s == "":
		p.add(name, mfa.ReasonRequired)
		return "", false
	}
	return s, true
}

// optionalString reads a string member if present; a non-string is a type error.
func (p *Problems) optionalString(o jsonObject, name string, keys ...string) (string, bool) {
	for _, k := range keys {
		raw, ok := o[k]
		if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			continue
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			p.add(name, mfa.ReasonType)
			return "", true
		}
		return s, true
	}
	return "", false
}

func (p *Problems) reported(name string) bool {
	for _, e := range p.list {
		if e.Field == name {
			return true
		}
	}
	return false
}

// objectType checks <name>.objectType (or AS2 "type") against want.
func (p *Problems) objectType(o jsonObject, name, want string) {
	t, ok := p.str(o, name+".objectType", "objectType", "type")
	if ok && !strings.EqualFold(t, want) {
		p.add(name+".objectType", mfa.ReasonEnum)
	}
}
