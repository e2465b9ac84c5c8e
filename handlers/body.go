package handlers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"

	"github.com/labstack/echo/v4"

	mfa "github.com/mfad/mfad"
)

// A request body that cannot be read is the client's doing, never a fault of the
// service: a broken or cut-short body is malformed (400), one that stops arriving
// until the server's read timeout is a 408, and a client that went away gets no
// answer at all (there is no one to send it to).

// StatusClientClosedRequest labels requests whose client went away before the answer
// (nginx's 499) in the access log and the metrics; nothing is sent.
const StatusClientClosedRequest = 499

// errClientGone marks an error caused by the client closing its connection.
var errClientGone = errors.New("client closed the connection")

// readBody reads the request body (at most MaxBody: limitBody) and says what went
// wrong if it cannot.
func readBody(c echo.Context) ([]byte, error) {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return nil, bodyError(err)
	}
	return body, nil
}

// bodyError turns a failed body read into the outcome the client caused. The cause
// stays wrapped for the debug log.
func bodyError(err error) error {
	var ne net.Error
	switch {
	case isTooLarge(err):
		return &mfa.Error{Code: mfa.CodePayloadTooLarge}
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("read request body: %w: %w", err, &mfa.Error{Code: mfa.CodeRequestTimeout})
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed):
		return fmt.Errorf("read request body: %w: %w", err, errClientGone)
	}
	// Broken chunked framing, or a body shorter than announced: the connection ended
	// (a client that shut down its sending side still reads the answer; TCP does not
	// tell that apart from one that left) or the framing is wrong.
	return fmt.Errorf("read request body: %w: %w", err, mfa.Malformed("body", mfa.ReasonSyntax))
}

// clientGone reports an error that means the client went away: its connection was
// reset while the body was read, or the request's context ended (net/http ends it when
// the connection closes) while a command or the authorization server was awaited, and
// the wait failed for that. A fault of the service (INTERNAL_ERROR) that happens to
// coincide is still one, and keeps its error log line.
func clientGone(c echo.Context, err error, outcome *mfa.Error) bool {
	if errors.Is(err, errClientGone) {
		return true
	}
	if c.Request().Context().Err() == nil {
		return false
	}
	switch outcome.Code {
	case mfa.CodeUnavailable, mfa.CodeGatewayTimeout:
		return true
	}
	return errors.Is(err, context.Canceled)
}

const abortKey = "mfad.abort"

// abortIfGone ends, without an answer, a request whose client went away. It runs
// outermost, after the access log and the metrics have counted the request as 499:
// panicking with http.ErrAbortHandler is how a handler tells net/http to close the
// connection without writing a response and without logging a stack.
func abortIfGone(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if gone, _ := c.Get(abortKey).(bool); gone {
			panic(http.ErrAbortHandler)
		}
		return err
	}
}

// markGone records that the client of c went away: nothing is written, and the
// request is logged at debug level and counted as 499.
func markGone(c echo.Context, log *slog.Logger, err error) {
	c.Set(abortKey, true)
	c.Response().Status = StatusClientClosedRequest
	log.Debug("client went away before the answer", "method", c.Request().Method, "route", c.Path(),
		"request_id", c.Response().Header().Get(echo.HeaderXRequestID), "err", err)
}
