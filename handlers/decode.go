package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
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
	err := json.Unmarshal(body, v)
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
