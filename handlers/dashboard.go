package handlers

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
)

// The dashboard (API.md §5): a static page, embedded so the binary serves it with no
// build step and no network, and two admin data endpoints it reads: the stats, a worker
// read like any other, and the live feed of MFA_EVENTS as server-sent events.

//go:embed dashboard
var dashboardFiles embed.FS

// EventFeed is the live event stream behind the dashboard (activity.Feed).
type EventFeed interface {
	// Events delivers MFA_EVENTS in stream order from the message after stream
	// sequence after (0: the last few) until ctx ends; the channel closes then, or
	// when the feed fails.
	Events(ctx context.Context, after uint64) (<-chan activity.FeedEvent, error)
}

const (
	// sseHeartbeat is how often an idle stream sends a comment. Proxies and load
	// balancers commonly cut a connection silent for 60 s; the page treats three
	// missed heartbeats as a dead connection.
	sseHeartbeat = 15 * time.Second
	// sseMaxAge ends every stream after a while. The token is checked when a stream
	// opens, so without an end a revoked or expired token would watch for ever; the
	// page reconnects with Last-Event-ID and misses nothing.
	sseMaxAge = 5 * time.Minute
	// sseRetry is the reconnection delay the stream suggests (the SSE retry field).
	sseRetry = 2 * time.Second
	// sseWriteWait is how long one write may block before the client is given up.
	sseWriteWait = 30 * time.Second
)

// dashboardCSP (the account page's too) confines the page to its own origin: no inline script, no CDN, no
// framing. The page shows user ids and summaries from events, which it writes as
// text, never as markup; the policy is the second line of defence behind that.
// form-action 'none' keeps the sign-in form from ever being submitted by the browser
// (script handles it), so a token typed before the script loaded cannot end up in a
// URL.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// handleDashboardPage serves /dashboard/ and its files. The page needs no token: it
// holds no data until the user signs in with one.
func (s *server) handleDashboardPage(c echo.Context) error {
	return servePage(c, dashboardFiles, "dashboard")
}

// servePage serves /<dir>/ and its files from files, an embedded directory dir.
func servePage(c echo.Context, files embed.FS, dir string) error {
	if c.Request().URL.Path == "/"+dir {
		// The page links its files and the API relatively, so it keeps working under
		// a reverse proxy's path prefix; that needs the trailing slash. A relative
		// Location keeps the prefix too.
		return c.Redirect(http.StatusFound, dir+"/")
	}
	name := c.Param("*")
	if name == "" {
		name = "index.html"
	}
	// fs.ValidPath refuses "..", "." and empty elements, so nothing outside the
	// directory is reachable and no name has two spellings.
	if !fs.ValidPath(name) {
		return echo.ErrNotFound
	}
	body, err := fs.ReadFile(files, dir+"/"+name)
	if err != nil {
		return echo.ErrNotFound
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = echo.MIMEOctetStream
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", dashboardCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// Small files, and a new binary must never be shown with an old script.
	h.Set(echo.HeaderCacheControl, "no-cache")
	return c.Blob(http.StatusOK, ctype, body)
}

// handleDashboardStats: GET /api/v1/dashboard/stats (admin).
func (s *server) handleDashboardStats(c echo.Context) error {
	st, reply, err := sendFor[mfa.DashboardStats](s, c, request{typ: mfa.CmdDashboard})
	if err != nil {
		return err
	}
	total := 0
	for _, e := range st.Events {
		total += e.Count
	}
	return deviceOK(c, map[string]any{
		"window":       map[string]any{"from": st.From, "to": st.To, "seconds": int(st.To.Sub(st.From).Seconds())},
		"events":       st.Events,
		"events_total": total,
		"adoption":     st.Adoption,
		"lockouts":     st.Lockouts,
		"outbox":       st.Outbox,
	}, reply.Message)
}

// handleDashboardEvents: GET /api/v1/dashboard/events (admin), server-sent events.
// Each event is one MFA_EVENTS message: id = its stream sequence, event = its
// mfa:event type, data = the AS2 activity. A client that sends Last-Event-ID resumes
// right after it; one that does not starts with the last few events.
func (s *server) handleDashboardEvents(c echo.Context) error {
	if s.feed == nil {
		return &mfa.Error{Code: mfa.CodeUnavailable}
	}
	after, err := lastEventID(c.Request().Header.Get("Last-Event-ID"))
	if err != nil {
		return err
	}
	if c.Request().Method == http.MethodHead {
		// The headers of the stream, and no stream: a HEAD would otherwise hold a
		// feed open for the stream's whole life to send nothing.
		c.Response().Header().Set(echo.HeaderContentType, "text/event-stream; charset=utf-8")
		return c.NoContent(http.StatusOK)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), sseMaxAge)
	defer cancel()
	events, err := s.feed.Events(ctx, after)
	if err != nil {
		s.log.Warn("dashboard event feed unavailable", "err", err)
		return &mfa.Error{Code: mfa.CodeUnavailable, RetryAfter: sseRetry}
	}

	w := c.Response()
	rc := http.NewResponseController(w)
	// The server's read timeout is meant for requests that end: past it, net/http's
	// background read fails and cancels the request context, which would cut every
	// stream after ReadTimeout. The write deadline is renewed per write below.
	if err := rc.SetReadDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream; charset=utf-8")
	h.Set("X-Accel-Buffering", "no") // nginx: pass each event on, do not buffer
	w.WriteHeader(http.StatusOK)

	send := func(frame []byte) bool {
		if err := rc.SetWriteDeadline(time.Now().Add(sseWriteWait)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return false
		}
		if _, err := w.Write(frame); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send([]byte("retry: " + strconv.Itoa(int(sseRetry/time.Millisecond)) + "\n: mfad events\n\n")) {
		return nil
	}
	heartbeat := time.NewTicker(sseHeartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				// The maximum age, or the feed failed: the client reconnects from
				// its last id, and the token is checked again.
				return nil
			}
			if !send(sseFrame(ev)) {
				return nil
			}
		case <-heartbeat.C:
			if !send([]byte(": heartbeat\n\n")) {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// lastEventID reads the Last-Event-ID header: empty for a first connection, else a
// stream sequence this endpoint sent.
func lastEventID(v string) (uint64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, mfa.Invalid("Last-Event-ID", mfa.ReasonFormat)
	}
	return n, nil
}

// sseFrame is one event in the text/event-stream format. A data line ends at a line
// break (CR, LF or CRLF), so a body with one (JSON never has a raw one, but a foreign
// publisher might) is split into several data lines, which the client joins back with "\n".
func sseFrame(ev activity.FeedEvent) []byte {
	var b bytes.Buffer
	b.Grow(len(ev.Body) + len(ev.Type) + 40)
	b.WriteString("id: ")
	b.WriteString(strconv.FormatUint(ev.Seq, 10))
	b.WriteString("\nevent: ")
	b.WriteString(ev.Type)
	b.WriteByte('\n')
	body := bytes.ReplaceAll(ev.Body, []byte("\r\n"), []byte("\n"))
	body = bytes.ReplaceAll(body, []byte("\r"), []byte("\n"))
	for _, line := range bytes.Split(body, []byte("\n")) {
		b.WriteString("data: ")
		b.Write(line)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	return b.Bytes()
}
