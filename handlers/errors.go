package handlers

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	mfa "github.com/mfad/mfad"
)

// dialect is one of the three API dialects; each has its own error envelope.
type dialect int

const (
	deviceDialect  dialect = iota // /api/v1/... : {"success":false,"error":{...}}
	bankingDialect                // /settings/... : RFC 9457 problem details
	druidDialect                  // /activityid/... : {"result":{...}}
)

func dialectOf(path string) dialect {
	switch {
	case strings.HasPrefix(path, "/settings/"):
		return bankingDialect
	case strings.HasPrefix(path, "/activityid/"):
		return druidDialect
	}
	return deviceDialect
}

// outcomeStatus is the HTTP status of every outcome in the device and banking dialects.
var outcomeStatus = map[string]int{
	mfa.CodeValidation:          http.StatusBadRequest,
	mfa.CodeMalformed:           http.StatusBadRequest,
	mfa.CodePayloadTooLarge:     http.StatusRequestEntityTooLarge,
	mfa.CodeRequestTimeout:      http.StatusRequestTimeout,
	mfa.CodeUnauthorized:        http.StatusUnauthorized,
	mfa.CodeStepUpRequired:      http.StatusUnauthorized,
	mfa.CodeForbidden:           http.StatusForbidden,
	mfa.CodeNotFound:            http.StatusNotFound,
	mfa.CodeMethodNotAllowed:    http.StatusMethodNotAllowed,
	mfa.CodeInvalidCode:         http.StatusBadRequest,
	mfa.CodeNoPendingSetup:      http.StatusBadRequest,
	mfa.CodeNoPendingSecret:     http.StatusBadRequest,
	mfa.CodeMFANotEnabled:       http.StatusBadRequest,
	mfa.CodeNoTOTPDevice:        http.StatusBadRequest,
	mfa.CodeInvalidMethod:       http.StatusBadRequest,
	mfa.CodeTooManyAttempts:     http.StatusTooManyRequests,
	mfa.CodeDeviceNotFound:      http.StatusNotFound,
	mfa.CodeChannelNotFound:     http.StatusNotFound,
	mfa.CodeChannelNotVoluntary: http.StatusForbidden,
	mfa.CodeDeviceLimit:         http.StatusConflict,
	mfa.CodeSecretExists:        http.StatusConflict,
	mfa.CodeChannelExists:       http.StatusConflict,
	mfa.CodeConflict:            http.StatusConflict,
	mfa.CodeKeyReused:           http.StatusConflict,
	mfa.CodeDeviceRemove:        http.StatusInternalServerError,
	mfa.CodeInternal:            http.StatusInternalServerError,
	mfa.CodeUnavailable:         http.StatusServiceUnavailable,
	mfa.CodeGatewayTimeout:      http.StatusGatewayTimeout,

	// WebAuthn
	mfa.CodeInvalidChallenge:     http.StatusBadRequest,
	mfa.CodeInvalidCredential:    http.StatusBadRequest,
	mfa.CodeCredentialNotAllowed: http.StatusForbidden,
	mfa.CodeCredentialExists:     http.StatusConflict,
	mfa.CodeCredentialNotFound:   http.StatusNotFound,
	mfa.CodeCredentialLimit:      http.StatusConflict,
}

// druidOutcome is the status and errors[].message of an outcome in the DruID dialect:
// MFA rule violations are 417 with a snake_case reason (API.md §3).
var druidOutcome = map[string]struct {
	status int
	reason string
}{
	mfa.CodeChannelNotFound:     {http.StatusExpectationFailed, "mfa_channel_not_found"},
	mfa.CodeChannelNotVoluntary: {http.StatusExpectationFailed, "mfa_channel_not_voluntary"},
	mfa.CodeInvalidCode:         {http.StatusExpectationFailed, "mfa_code_invalid"},
	mfa.CodeNoPendingSetup:      {http.StatusExpectationFailed, "mfa_channel_not_found"},
	mfa.CodeNoPendingSecret:     {http.StatusExpectationFailed, "mfa_channel_not_found"},
	mfa.CodeChannelExists:       {http.StatusExpectationFailed, "mfa_channel_already_exists"},
	mfa.CodeMFANotEnabled:       {http.StatusExpectationFailed, "mfa_not_enabled"},
}

// statusOf is the HTTP status of an outcome in a dialect.
func statusOf(d dialect, e *mfa.Error) int {
	if d == druidDialect {
		if o, ok := druidOutcome[e.Code]; ok {
			return o.status
		}
	}
	if d == deviceDialect && e.Code == mfa.CodeValidation && e.Reason != mfa.ReasonEnum {
		// The device dialect answers a well-formed request whose fields break a rule
		// with 422; malformed JSON, wrong types and unknown enum values are 400.
		return http.StatusUnprocessableEntity
	}
	if s, ok := outcomeStatus[e.Code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// publicCode is the code a dialect shows: malformed and invalid requests are one
// VALIDATION_ERROR to clients, and every 401 is UNAUTHORIZED (API.md §0): a token too
// old for a step-up says so in its WWW-Authenticate challenge (RFC 9470) and message.
func publicCode(e *mfa.Error) string {
	switch e.Code {
	case mfa.CodeMalformed:
		return mfa.CodeValidation
	case mfa.CodeStepUpRequired:
		return mfa.CodeUnauthorized
	}
	return e.Code
}

// errorHandler renders every error that reaches echo in the dialect of the path.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		outcome, challenge := classify(err)
		if clientGone(c, err, outcome) {
			markGone(c, log, err)
			return
		}
		if outcome.Code == mfa.CodeInternal {
			log.Error("request failed", "method", c.Request().Method, "path", c.Path(),
				"request_id", c.Response().Header().Get(echo.HeaderXRequestID), "err", err)
		}
		if challenge != "" {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, challenge)
		}
		if err := renderError(c, outcome, err); err != nil {
			log.Warn("write error response", "err", err)
		}
	}
}

// classify turns any error into the outcome to show, and its WWW-Authenticate value.
func classify(err error) (*mfa.Error, string) {
	var af *authFailure
	if errors.As(err, &af) {
		return &mfa.Error{Code: af.code}, af.challenge()
	}
	if outcome := mfa.AsError(err); outcome != nil {
		return outcome, ""
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return &mfa.Error{Code: mfa.CodeNotFound}, ""
		case http.StatusMethodNotAllowed:
			return &mfa.Error{Code: mfa.CodeMethodNotAllowed}, ""
		case http.StatusRequestEntityTooLarge:
			return &mfa.Error{Code: mfa.CodePayloadTooLarge}, ""
		case http.StatusUnauthorized:
			return &mfa.Error{Code: mfa.CodeUnauthorized}, `Bearer realm="mfad", error="invalid_token"`
		}
	}
	return &mfa.Error{Code: mfa.CodeInternal}, ""
}

// renderError writes outcome in the envelope of the request's dialect; cause may list
// more problems than outcome, which DruID shows all of.
func renderError(c echo.Context, outcome *mfa.Error, cause error) error {
	d := dialectOf(c.Request().URL.Path)
	lang := language(c)
	status := statusOf(d, outcome)
	message := mfa.ErrorText(lang, outcome)
	if outcome.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int((outcome.RetryAfter+time.Second-1)/time.Second)))
	}
	switch d {
	case bankingDialect:
		return renderProblem(c, status, outcome, lang, message)
	case druidDialect:
		return renderDruidError(c, status, outcome, lang, cause)
	}
	body := deviceError{Success: false, Message: message}
	body.Error.Code = publicCode(outcome)
	body.Error.Message = message
	body.Error.Timestamp = time.Now().UTC().Format(time.RFC3339)
	if outcome.Field != "" {
		body.Error.Details = &fieldDetails{Field: outcome.Field, Reason: outcome.Reason}
	}
	return c.JSON(status, body)
}

type fieldDetails struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

type deviceError struct {
	Success bool `json:"success"`
	Error   struct {
		Code      string        `json:"code"`
		Message   string        `json:"message"`
		Details   *fieldDetails `json:"details,omitempty"`
		Timestamp string        `json:"timestamp"`
	} `json:"error"`
	Message string `json:"message"`
}

// problem is an RFC 9457 problem details object.
type problem struct {
	Type          string         `json:"type"`
	Title         string         `json:"title"`
	Status        int            `json:"status"`
	Detail        string         `json:"detail"`
	Code          string         `json:"code"`
	InvalidParams []invalidParam `json:"invalid-params,omitempty"`
}

type invalidParam struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

func renderProblem(c echo.Context, status int, outcome *mfa.Error, lang, message string) error {
	code := publicCode(outcome)
	p := problem{
		Type:   "urn:mfad:problem:" + strings.ToLower(strings.ReplaceAll(code, "_", "-")),
		Title:  mfa.Text(lang, outcome.Code),
		Status: status,
		Detail: message,
		Code:   code,
	}
	if outcome.Field != "" {
		p.InvalidParams = []invalidParam{{Name: outcome.Field, Reason: outcome.Reason}}
	}
	c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
	return c.JSON(status, p)
}
