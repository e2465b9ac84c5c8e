package handlers

import (
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	mfa "github.com/mfad/mfad"
)

// handleAudit: GET /api/v1/audit?user_id=&type=&since=&limit=&cursor= (API.md §5).
// Device envelope. The worker decides who sees what (admin: everyone, others: their
// own records), so this handler only checks the shape of the parameters.
func (s *server) handleAudit(c echo.Context) error {
	q, err := auditQuery(c)
	if err != nil {
		return err
	}
	page, reply, err := sendFor[mfa.AuditPage](s, c, request{typ: mfa.CmdAuditQuery, params: q})
	if err != nil {
		return err
	}
	var next *int64 // null on the last page
	if page.NextCursor > 0 {
		next = &page.NextCursor
	}
	if page.Records == nil {
		page.Records = []mfa.AuditRecord{}
	}
	return deviceOK(c, map[string]any{"records": page.Records, "next_cursor": next}, reply.Message)
}

// auditQuery reads the query parameters. An empty parameter is an absent one. A value
// that is not a number where one is expected is MALFORMED (400); a number or a string
// of the right type that breaks a rule is a VALIDATION_ERROR naming the parameter.
func auditQuery(c echo.Context) (mfa.AuditQuery, error) {
	var q mfa.AuditQuery
	if v := c.QueryParam("user_id"); v != "" {
		if err := checkUserID("user_id", v); err != nil {
			return q, err
		}
		q.UserID = v
	}
	if v := c.QueryParam("type"); v != "" {
		if _, ok := mfa.EventCatalogue[v]; !ok {
			return q, mfa.Invalid("type", mfa.ReasonEnum)
		}
		q.Type = v
	}
	if v := c.QueryParam("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return q, mfa.Invalid("since", mfa.ReasonFormat)
		}
		q.Since = t.UnixMilli()
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			return q, mfa.Malformed("limit", mfa.ReasonType)
		case n < 1:
			return q, mfa.Invalid("limit", mfa.ReasonFormat)
		}
		q.Limit = n // above the maximum the worker answers a page of the maximum
	}
	if v := c.QueryParam("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil:
			return q, mfa.Malformed("cursor", mfa.ReasonType)
		case n < 0:
			return q, mfa.Invalid("cursor", mfa.ReasonFormat)
		}
		q.Cursor = n
	}
	return q, nil
}
