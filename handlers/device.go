package handlers

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/labstack/echo/v4"

	mfa "github.com/mfad/mfad"
)

// The device dialect (API.md §2): snake_case, {"success","data","message"}.

type deviceMethod struct {
	ID          int64      `json:"id"`
	Type        mfa.Kind   `json:"type"`
	Name        string     `json:"name"`
	Destination string     `json:"destination,omitempty"`
	IsPrimary   bool       `json:"is_primary"`
	Voluntary   bool       `json:"voluntary"`
	CreatedAt   time.Time  `json:"created_at"`
	LastUsedAt  *time.Time `json:"last_used_at"`
}

func deviceMethods(ms []mfa.Method) []deviceMethod {
	out := make([]deviceMethod, len(ms))
	for i, m := range ms {
		out[i] = deviceMethod{ID: m.ID, Type: m.Kind, Name: m.Label, Destination: m.Destination,
			IsPrimary: m.Primary, Voluntary: m.Voluntary, CreatedAt: m.CreatedAt, LastUsedAt: m.LastUsedAt}
	}
	return out
}

// handleStatus: GET /api/v1/mfa/status.
func (s *server) handleStatus(c echo.Context) error {
	reply, err := s.send(c, request{typ: mfa.CmdStatus})
	if err != nil {
		return err
	}
	var st mfa.Status
	if err := unpack(reply, &st); err != nil {
		return err
	}
	return deviceOK(c, map[string]any{
		"enabled":                st.SignInEnabled,
		"methods":                deviceMethods(st.Methods),
		"backup_codes_remaining": st.BackupCodesRemaining,
	}, reply.Message)
}

// unpack decodes a reply's data.
func unpack(reply mfa.Reply, v any) error {
	if err := json.Unmarshal(reply.Data, v); err != nil {
		return fmt.Errorf("decode reply data: %w", err)
	}
	return nil
}
