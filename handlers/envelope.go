package handlers

import (
	"errors"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	mfa "github.com/mfad/mfad"
)

// deviceOK writes the device dialect's success envelope.
func deviceOK(c echo.Context, data any, message string) error {
	return c.JSON(http.StatusOK, struct {
		Success bool   `json:"success"`
		Data    any    `json:"data"`
		Message string `json:"message"`
	}{true, data, message})
}

// druidResult is the DruID envelope: result.status always equals the HTTP status.
type druidResult struct {
	Result struct {
		Status  int          `json:"status"`
		Message string       `json:"message"`
		Elapsed float64      `json:"elapsed"`
		Errors  []druidError `json:"errors"`
	} `json:"result"`
}

type druidError struct {
	Message string `json:"message"`
	Details string `json:"details,omitempty"`
	Field   string `json:"field,omitempty"`
}

// druidOK writes a DruID success answer.
func druidOK(c echo.Context, message string) error {
	return writeDruid(c, http.StatusOK, message, []druidError{})
}

func renderDruidError(c echo.Context, status int, outcome *mfa.Error, lang string, cause error) error {
	problems := mfa.Problems{outcome}
	var all mfa.Problems
	if errors.As(cause, &all) && len(all) > 0 && outcome.Code != mfa.CodeForbidden {
		problems = all
	}
	errs := make([]druidError, len(problems))
	for i, p := range problems {
		errs[i] = druidError{Message: druidReason(p), Details: mfa.ErrorText(lang, druidDetail(p)), Field: p.Field}
	}
	// result.message is the one line a DruID client shows: the vendor's headline for
	// its documented 400 and 417, else the outcome's own text, in the caller's language.
	headline := mfa.Text(lang, outcome.Code)
	switch status {
	case http.StatusExpectationFailed:
		headline = mfa.Text(lang, mfa.MsgMFAError)
	case http.StatusBadRequest:
		headline = mfa.Text(lang, mfa.MsgBadRequest)
	}
	return writeDruid(c, status, headline, errs)
}

// druidReason is the errors[].message of an outcome: the documented MFA reasons, else
// invalid_parameter for a field, else the code in DruID's snake case.
func druidReason(e *mfa.Error) string {
	if o, ok := druidOutcome[e.Code]; ok {
		return o.reason
	}
	if e.Field != "" && (e.Code == mfa.CodeValidation || e.Code == mfa.CodeMalformed) {
		return "invalid_parameter"
	}
	return strings.ToLower(publicCode(e))
}

// druidAlias are outcomes DruID reports under another one's reason: their details must
// say what the reason says, not talk of a TOTP setup to a client validating an SMS.
var druidAlias = map[string]string{
	mfa.CodeNoPendingSetup:  mfa.CodeChannelNotFound,
	mfa.CodeNoPendingSecret: mfa.CodeChannelNotFound,
}

// druidDetail is the outcome whose text explains e in the DruID dialect.
func druidDetail(e *mfa.Error) *mfa.Error {
	if code, ok := druidAlias[e.Code]; ok {
		alias := *e
		alias.Code = code
		return &alias
	}
	return e
}

func writeDruid(c echo.Context, status int, message string, errs []druidError) error {
	var r druidResult
	r.Result.Status = status
	r.Result.Message = message
	r.Result.Errors = errs
	if start, ok := c.Get(startKey).(time.Time); ok {
		// seconds, to the millisecond, as the vendor shows it
		r.Result.Elapsed = math.Round(time.Since(start).Seconds()*1000) / 1000
	}
	return c.JSON(status, r)
}
