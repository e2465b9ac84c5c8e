package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	mfa "github.com/mfad/mfad"
)

// decodeBody reads a JSON object body into v. An empty body (or "null") leaves v as it
// is: it is valid wherever no field is required, whatever the Content-Type says. Unknown
// fields are ignored. Errors are outcomes naming the field: a body that is not JSON or
// not an object (or not UTF-8), or a field of the wrong type, is MALFORMED_REQUEST (400 everywhere).
func decodeBody(c echo.Context, v any) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	return decodeJSON(body, v)
}

// decodeJSON is decodeBody's pure part, shared by every dialect and the fuzz targets.
func decodeJSON(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || bytes.Equal(body, []byte("null")) {
		return nil
	}
	// JSON text is UTF-8 (RFC 8259 §8.1); encoding/json would quietly turn other bytes
	// in a string into U+FFFD and accept the request.
	if !utf8.Valid(body) {
		return mfa.Malformed("body", mfa.ReasonSyntax)
	}
	if body[0] != '{' {
		if !json.Valid(body) {
			return mfa.Malformed("body", mfa.ReasonSyntax)
		}
		return mfa.Malformed("body", mfa.ReasonType)
	}
	body, err := exactMembers(body, v)
	if err != nil {
		return mfa.Malformed("body", mfa.ReasonSyntax)
	}
	err = json.Unmarshal(body, v)
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return mfa.Malformed(field, mfa.ReasonType)
	default:
		var fe *fieldError
		if errors.As(err, &fe) {
			return mfa.Malformed(fe.field, mfa.ReasonType)
		}
		return mfa.Malformed("body", mfa.ReasonSyntax)
	}
}

// fieldError lets a custom UnmarshalJSON name the field it refused.
type fieldError struct{ field string }

func (e *fieldError) Error() string { return "wrong type for " + e.field }

// exactMembers drops from the object body the members whose names match one of v's
// fields only when case is ignored: encoding/json would take "DEVICE_NAME" for
// device_name, where the contract ignores unknown fields. The body comes back as it
// is when it has no such member, which is nearly always.
func exactMembers(body []byte, v any) ([]byte, error) {
	names := fieldNames(reflect.TypeOf(v))
	if len(names) == 0 || !mayFoldOnto(body, names) {
		return body, nil
	}
	return dropFolded(body, names)
}

// dropFolded is body without its members whose names fold onto one of names without
// being one; body itself when it has none.
func dropFolded(body []byte, names map[string]bool) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // the '{' decodeJSON checked
		return nil, err
	}
	type member struct {
		name  string
		value json.RawMessage
	}
	var kept []member
	folded := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := tok.(string) // an object's keys are strings, or Token fails
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, err
		}
		if names[name] {
			kept = append(kept, member{name, value})
			continue
		}
		for known := range names {
			if strings.EqualFold(name, known) {
				folded = true
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the object")
	}
	if !folded {
		return body, nil
	}
	b := append(make([]byte, 0, len(body)), '{')
	for i, m := range kept {
		if i > 0 {
			b = append(b, ',')
		}
		b = mfa.AppendJSONString(b, m.name)
		b = append(b, ':')
		b = append(b, m.value...)
	}
	return append(b, '}'), nil
}

// mayFoldOnto reports whether body may hold a member name that matches one of names
// only without case: a quoted string equal to one of them but for ASCII case, or
// anything encoding/json could fold in ways a byte scan does not see (an escape, the
// Kelvin sign, the long s). A cheap scan, so that the usual body skips the decoder pass.
func mayFoldOnto(body []byte, names map[string]bool) bool {
	if bytes.IndexByte(body, '\\') >= 0 || bytes.Contains(body, []byte("\u212a")) || bytes.Contains(body, []byte("\u017f")) {
		return true
	}
	for i := bytes.IndexByte(body, '"'); i >= 0; {
		rest := body[i+1:]
		end := bytes.IndexByte(rest, '"')
		if end < 0 {
			return false
		}
		if s := rest[:end]; !names[string(s)] {
			for name := range names {
				if len(name) == len(s) && bytes.EqualFold(s, []byte(name)) {
					return true
				}
			}
		}
		next := bytes.IndexByte(rest[end+1:], '"')
		if next < 0 {
			return false
		}
		i = i + 1 + end + 1 + next
	}
	return false
}

// fieldNamesOf caches fieldNames per request type.
var fieldNamesOf sync.Map // reflect.Type → map[string]bool

// fieldNames is the set of JSON member names of the struct *T, from its json tags.
func fieldNames(t reflect.Type) map[string]bool {
	if cached, ok := fieldNamesOf.Load(t); ok {
		return cached.(map[string]bool)
	}
	names := map[string]bool{}
	if t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct {
		st := t.Elem()
		for i := range st.NumField() {
			f := st.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case name == "-" || !f.IsExported():
			case name == "":
				names[f.Name] = true
			default:
				names[name] = true
			}
		}
	}
	fieldNamesOf.Store(t, names)
	return names
}
