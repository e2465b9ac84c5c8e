package handlers

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPISource is the OpenAPI 3.1 description of every route, kept by hand beside the
// handlers: openapi_test.go fails when it and routes.go disagree, when an example breaks
// its schema, and when a live answer of the test stack does.
//
//go:embed openapi.json
var openAPISource []byte

// openAPIDocument is the document as served: compacted once, a third of the indented
// file's size.
var openAPIDocument = func() []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, openAPISource); err != nil {
		panic("handlers/openapi.json is not JSON: " + err.Error())
	}
	return b.Bytes()
}()

// handleOpenAPI: GET /openapi.json (no token).
func (s *server) handleOpenAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIDocument)
}
