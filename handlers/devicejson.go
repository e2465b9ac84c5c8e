package handlers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	mfa "github.com/mfad/mfad"
)

// The device dialect's two most-read answers, the status and the TOTP device list,
// encoded by hand: reflection over them was about 5 % of a status request's CPU. Each
// type's appendJSON writes what json.Marshal writes for it, byte for byte
// (TestDeviceDataMatchesMarshal, FuzzDeviceData), so an answer is the same whichever
// way it was made.

// deviceData is data whose JSON appendJSON writes; false where json.Marshal would fail.
type deviceData interface {
	appendJSON(b []byte) ([]byte, bool)
}

// deviceOKData is deviceOK for data that encodes itself. ?pretty (echo's indented
// output) and data that cannot encode itself take deviceOK's way.
func deviceOKData(c echo.Context, data deviceData, message string) error {
	if _, pretty := c.QueryParams()["pretty"]; !pretty && !c.Echo().Debug {
		b := append(make([]byte, 0, 512), `{"success":true,"data":`...)
		if b, ok := data.appendJSON(b); ok {
			b = append(b, `,"message":`...)
			b = mfa.AppendJSONString(b, message)
			// json.Encoder, which deviceOK's c.JSON uses, ends its output with a newline.
			return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, append(b, "}\n"...))
		}
	}
	return deviceOK(c, data, message)
}

// statusData is GET /api/v1/mfa/status's data, its members in the contract's order.
type statusData struct {
	Enabled              bool           `json:"enabled"`
	Methods              []deviceMethod `json:"methods"`
	BackupCodesRemaining int            `json:"backup_codes_remaining"`
}

func (d statusData) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"enabled":`...)
	b = strconv.AppendBool(b, d.Enabled)
	b = append(b, `,"methods":`...)
	b, ok := mfa.AppendJSONList(b, d.Methods, deviceMethod.appendJSON)
	if !ok {
		return b, false
	}
	b = append(b, `,"backup_codes_remaining":`...)
	b = strconv.AppendInt(b, int64(d.BackupCodesRemaining), 10)
	return append(b, '}'), true
}

func (m deviceMethod) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, m.ID, 10)
	b = append(b, `,"type":`...)
	b = mfa.AppendJSONString(b, string(m.Type))
	b = append(b, `,"name":`...)
	b = mfa.AppendJSONString(b, m.Name)
	b = mfa.AppendJSONField(b, "destination", m.Destination)
	b = append(b, `,"is_primary":`...)
	b = strconv.AppendBool(b, m.IsPrimary)
	b = append(b, `,"voluntary":`...)
	b = strconv.AppendBool(b, m.Voluntary)
	b, ok := appendTimes(b, m.CreatedAt, m.LastUsedAt)
	return append(b, '}'), ok
}

// totpDevices is GET /api/v1/mfa/totp/devices's data.
type totpDevices struct {
	Devices    []totpDevice `json:"devices"`
	TotalCount int          `json:"total_count"`
}

type totpDevice struct {
	ID         int64      `json:"id"`
	DeviceName string     `json:"device_name"`
	Type       mfa.Kind   `json:"type"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	IsPrimary  bool       `json:"is_primary"`
	Verified   bool       `json:"verified"`
}

func (d totpDevices) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"devices":`...)
	b, ok := mfa.AppendJSONList(b, d.Devices, totpDevice.appendJSON)
	if !ok {
		return b, false
	}
	b = append(b, `,"total_count":`...)
	b = strconv.AppendInt(b, int64(d.TotalCount), 10)
	return append(b, '}'), true
}

func (d totpDevice) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, d.ID, 10)
	b = append(b, `,"device_name":`...)
	b = mfa.AppendJSONString(b, d.DeviceName)
	b = append(b, `,"type":`...)
	b = mfa.AppendJSONString(b, string(d.Type))
	b, ok := appendTimes(b, d.CreatedAt, d.LastUsedAt)
	if !ok {
		return b, false
	}
	b = append(b, `,"is_primary":`...)
	b = strconv.AppendBool(b, d.IsPrimary)
	b = append(b, `,"verified":`...)
	b = strconv.AppendBool(b, d.Verified)
	return append(b, '}'), true
}

// appendTimes writes ,"created_at":…,"last_used_at":… (null when never used).
func appendTimes(b []byte, created time.Time, lastUsed *time.Time) ([]byte, bool) {
	b = append(b, `,"created_at":`...)
	b, ok := mfa.AppendJSONTime(b, created)
	if !ok {
		return b, false
	}
	b = append(b, `,"last_used_at":`...)
	if lastUsed == nil {
		return append(b, "null"...), true
	}
	return mfa.AppendJSONTime(b, *lastUsed)
}
