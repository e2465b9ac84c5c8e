package handlers_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/mfad/mfad/handlers"
)

// The OpenAPI document (handlers/openapi.json) is checked four ways: against the routes
// echo has registered, against the OpenAPI 3.1 schema and JSON Schema 2020-12, its
// examples against its schemas, and the live answers of the test stack against the
// schemas of the status they came with.

const docURL = "mem://mfad/openapi.json"

// operationMethods are the path item fields that are operations.
var operationMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// publicRoutes need no token (API.md §0): the operations routes and the dashboard page.
var publicRoutes = map[string]bool{
	"GET /healthz": true, "GET /readyz": true, "GET /metrics": true, "GET /openapi.json": true,
	"GET /dashboard": true, "GET /dashboard/{path}": true,
	"GET /account": true, "GET /account/{path}": true,
}

// apiDoc is the parsed document and its compiled schemas.
type apiDoc struct {
	raw      map[string]any // decoded with encoding/json, for walking
	compiler *jsonschema.Compiler
	mu       sync.Mutex
	schemas  map[string]*jsonschema.Schema // by JSON pointer
	paths    []pathTemplate                // literal paths first
}

type pathTemplate struct {
	template string
	re       *regexp.Regexp
	literal  bool
}

var (
	docOnce sync.Once
	docVal  *apiDoc
	docErr  error
)

// loadDoc reads openapi.json from the package directory, as it is embedded.
func loadDoc(t testing.TB) *apiDoc {
	t.Helper()
	docOnce.Do(func() { docVal, docErr = parseDoc() })
	if docErr != nil {
		t.Fatal(docErr)
	}
	return docVal
}

func parseDoc() (*apiDoc, error) {
	src, err := os.ReadFile("openapi.json")
	if err != nil {
		return nil, err
	}
	d := &apiDoc{schemas: map[string]*jsonschema.Schema{}}
	if err := json.Unmarshal(src, &d.raw); err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	// jsonschema wants its own decoding (numbers as json.Number).
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	d.compiler = jsonschema.NewCompiler()
	d.compiler.DefaultDraft(jsonschema.Draft2020)
	d.compiler.AssertFormat() // date-time, uuid, email and uri are part of the contract
	if err := d.compiler.AddResource(docURL, doc); err != nil {
		return nil, err
	}
	for tmpl := range d.raw["paths"].(map[string]any) {
		quoted := regexp.QuoteMeta(tmpl)
		// {path} is echo's trailing * (the dashboard's files): any rest, even empty.
		pattern := strings.ReplaceAll(quoted, `\{path\}`, `.*`)
		pattern = regexp.MustCompile(`\\\{[a-z_]+\\\}`).ReplaceAllString(pattern, `[^/]+`)
		d.paths = append(d.paths, pathTemplate{tmpl, regexp.MustCompile("^" + pattern + "$"), !strings.Contains(tmpl, "{")})
	}
	sort.Slice(d.paths, func(i, j int) bool {
		if d.paths[i].literal != d.paths[j].literal {
			return d.paths[i].literal
		}
		return d.paths[i].template < d.paths[j].template
	})
	return d, nil
}

// schema compiles the schema at a JSON pointer of the document.
func (d *apiDoc) schema(ptr string) (*jsonschema.Schema, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.schemas[ptr]; ok {
		return s, nil
	}
	s, err := d.compiler.Compile(docURL + "#" + ptr)
	if err != nil {
		return nil, err
	}
	d.schemas[ptr] = s
	return s, nil
}

// pointer escapes JSON pointer tokens.
func pointer(tokens ...string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	return b.String()
}

// resolve follows a local $ref of a document object; it returns the object and its
// pointer.
func (d *apiDoc) resolve(v any, ptr string) (map[string]any, string) {
	m, _ := v.(map[string]any)
	ref, ok := m["$ref"].(string)
	if !ok {
		return m, ptr
	}
	ptr = strings.TrimPrefix(ref, "#")
	var cur any = d.raw
	for _, tok := range strings.Split(ptr, "/")[1:] {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		cur = cur.(map[string]any)[tok]
	}
	return d.resolve(cur, ptr)
}

// operations lists "METHOD /template" of the document.
func (d *apiDoc) operations() map[string]map[string]any {
	out := map[string]map[string]any{}
	for tmpl, item := range d.raw["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			if slices.Contains(operationMethods, method) {
				out[strings.ToUpper(method)+" "+tmpl] = op.(map[string]any)
			}
		}
	}
	return out
}

// echoTemplate turns an echo route path into the document's form: /devices/:device_id
// is /devices/{device_id}, and a trailing * (the dashboard's files) is {path}.
func echoTemplate(p string) string {
	p = regexp.MustCompile(`:([a-z_]+)`).ReplaceAllString(p, "{$1}")
	if strings.HasSuffix(p, "/*") {
		p = strings.TrimSuffix(p, "*") + "{path}"
	}
	return p
}

// TestOpenAPIRoutes: every registered route is documented, and every documented
// operation is registered, with its literal path.
func TestOpenAPIRoutes(t *testing.T) {
	d := loadDoc(t)
	e := handlers.New(handlers.Config{})
	registered := map[string]bool{}
	heads := map[string]bool{}
	for _, r := range e.Routes() {
		if strings.HasPrefix(r.Method, "echo_") { // echo's own RouteNotFound entries
			continue
		}
		if r.Method == http.MethodHead { // implied by the GET (RFC 9110 §9.3.2), not documented
			heads[echoTemplate(r.Path)] = true
			continue
		}
		registered[r.Method+" "+echoTemplate(r.Path)] = true
	}
	for key := range registered {
		if path, isGet := strings.CutPrefix(key, "GET "); isGet && !heads[path] {
			t.Errorf("GET %s has no HEAD", path)
		}
	}
	for path := range heads {
		if !registered["GET "+path] {
			t.Errorf("HEAD %s has no GET", path)
		}
	}
	documented := d.operations()
	for key := range registered {
		if _, ok := documented[key]; !ok {
			t.Errorf("route %s is registered but not in openapi.json", key)
		}
	}
	for key := range documented {
		if !registered[key] {
			t.Errorf("openapi.json documents %s, which is not a registered route", key)
		}
	}
}

// TestOpenAPIDocument checks the document's own shape: OpenAPI 3.1 (the OpenAPI
// Initiative's schema), every schema a JSON Schema 2020-12 one, and the conventions
// API.md asks of every operation.
func TestOpenAPIDocument(t *testing.T) {
	d := loadDoc(t)
	if v, _ := d.raw["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("openapi = %q, want 3.1.x", v)
	}
	t.Run("oas-3.1-schema", func(t *testing.T) { validateAgainstOAS(t) })

	// Every schema compiles as JSON Schema 2020-12: the compiler checks each against the
	// draft's metaschema and resolves every $ref.
	for name := range d.raw["components"].(map[string]any)["schemas"].(map[string]any) {
		if _, err := d.schema(pointer("components", "schemas", name)); err != nil {
			t.Errorf("components.schemas.%s: %v", name, err)
		}
	}

	ids := map[string]string{}
	for key, op := range d.operations() {
		method, tmpl, _ := strings.Cut(key, " ")
		id, _ := op["operationId"].(string)
		if id == "" {
			t.Errorf("%s: no operationId", key)
		} else if other, dup := ids[id]; dup {
			t.Errorf("%s: operationId %s is also %s's", key, id, other)
		}
		ids[id] = key

		// Security: the public routes say so with an empty requirement; every other
		// route inherits the document's bearer requirement.
		sec, hasSec := op["security"]
		public := hasSec && len(sec.([]any)) == 0
		if public != publicRoutes[key] {
			t.Errorf("%s: public = %v, want %v", key, public, publicRoutes[key])
		}

		// Every path parameter of the template is declared, and nothing else in the path.
		declared := map[string]bool{}
		for i, p := range op["parameters"].([]any) {
			pm, _ := d.resolve(p, pointer("paths", tmpl, strings.ToLower(method), "parameters", fmt.Sprint(i)))
			if pm["in"] == "path" {
				declared[pm["name"].(string)] = true
			}
		}
		for _, m := range regexp.MustCompile(`\{([a-z_]+)\}`).FindAllStringSubmatch(tmpl, -1) {
			if !declared[m[1]] {
				t.Errorf("%s: path parameter %s not declared", key, m[1])
			}
			delete(declared, m[1])
		}
		if len(declared) > 0 {
			t.Errorf("%s: declares path parameters not in the path: %v", key, declared)
		}

		responses := op["responses"].(map[string]any)
		if _, ok := responses["200"]; !ok && !strings.HasPrefix(tmpl, "/dashboard") && !strings.HasPrefix(tmpl, "/account") {
			t.Errorf("%s: no 200 response", key)
		}
		if !public {
			if _, ok := responses["401"]; !ok {
				t.Errorf("%s: needs a token but documents no 401", key)
			}
		}
		// Every POST and DELETE reads its body, if only to refuse a broken one
		// (TestEveryMutationRefusesABrokenBody), so each can answer 413 and 408.
		if _, ok := op["requestBody"]; ok || method == "POST" || method == "DELETE" {
			for _, status := range []string{"413", "408"} {
				if _, ok := responses[status]; !ok {
					t.Errorf("%s: reads a body but documents no %s", key, status)
				}
			}
		}
		for status, r := range responses {
			rm, _ := d.resolve(r, "")
			if _, ok := rm["headers"].(map[string]any)["X-Request-Id"]; !ok {
				t.Errorf("%s %s: X-Request-Id is not among the response headers", key, status)
			}
		}
	}
}

// validateAgainstOAS validates the document with the OpenAPI Initiative's JSON Schema
// for OpenAPI 3.1 documents. That file ships inside a Go module the proxy serves
// (pb33f/libopenapi, whose own YAML dependency the proxy does not serve, so it cannot
// be imported); `go mod download` fetches it with its checksum verified against the
// checksum database, and nothing of it is copied into this repository.
func validateAgainstOAS(t *testing.T) {
	const (
		module = "github.com/pb33f/libopenapi@v0.41.8"
		file   = "datamodel/schemas/oas31-schema.json"
	)
	cmd := exec.Command("go", "mod", "download", "-json", module)
	cmd.Dir = t.TempDir() // outside this module: go.mod is neither read nor changed
	out, err := cmd.Output()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("go mod download %s: %v", module, err)
		}
		t.Skipf("go mod download %s: %v (offline?)", module, err)
	}
	var dl struct{ Dir string }
	if err := json.Unmarshal(out, &dl); err != nil || dl.Dir == "" {
		t.Fatalf("go mod download %s: %v %s", module, err, out)
	}
	f, err := os.Open(filepath.Join(dl.Dir, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	oas, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := oas.(map[string]any)["$id"].(string)
	if !strings.HasPrefix(id, "https://spec.openapis.org/oas/3.1/schema/") {
		t.Fatalf("%s is not the OpenAPI 3.1 schema: $id %q", file, id)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(id, oas); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(id)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(doc); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI 3.1 document:\n%v", err)
	}
}

// TestOpenAPIExamples: every example (request bodies, responses, parameters) is valid
// against the schema beside it.
func TestOpenAPIExamples(t *testing.T) {
	d := loadDoc(t)
	n := 0
	check := func(where, schemaPtr string, value any) {
		t.Helper()
		n++
		sch, err := d.schema(schemaPtr)
		if err != nil {
			t.Errorf("%s: schema: %v", where, err)
			return
		}
		if err := sch.Validate(reencode(t, value)); err != nil {
			t.Errorf("%s: example does not match its schema:\n%v", where, err)
		}
	}
	media := func(where string, content map[string]any, base string) {
		for mt, m := range content {
			mm := m.(map[string]any)
			sp := base + pointer("content", mt, "schema")
			if ex, ok := mm["example"]; ok {
				check(where+" "+mt, sp, ex)
			}
			for name, ex := range mapOf(mm["examples"]) {
				exm, _ := d.resolve(ex, "")
				check(where+" "+mt+" example "+name, sp, exm["value"])
			}
		}
	}
	for key, op := range d.operations() {
		method, tmpl, _ := strings.Cut(key, " ")
		base := pointer("paths", tmpl, strings.ToLower(method))
		if rb, ok := op["requestBody"]; ok {
			rbm, ptr := d.resolve(rb, base+"/requestBody")
			media(key+" request", mapOf(rbm["content"]), ptr)
		}
		for status, r := range mapOf(op["responses"]) {
			rm, ptr := d.resolve(r, base+pointer("responses", status))
			media(key+" "+status, mapOf(rm["content"]), ptr)
		}
		for i, p := range op["parameters"].([]any) {
			pm, ptr := d.resolve(p, base+pointer("parameters", fmt.Sprint(i)))
			if ex, ok := pm["example"]; ok {
				check(key+" parameter "+pm["name"].(string), ptr+"/schema", ex)
			}
		}
	}
	if n < 50 {
		t.Errorf("only %d examples checked; the walk is broken", n)
	}
}

// TestOpenAPISeedExample: the device removal success example is the vendor page's
// (shared/seeds/004), byte for byte in meaning.
func TestOpenAPISeedExample(t *testing.T) {
	d := loadDoc(t)
	op := d.operations()["DELETE /api/v1/mfa/totp/devices/{device_id}"]
	r, _ := d.resolve(mapOf(op["responses"])["200"], "")
	ex := mapOf(mapOf(mapOf(mapOf(r["content"])["application/json"])["examples"])["removed"])["value"]
	want := map[string]any{"success": true, "data": map[string]any{"success": true,
		"message": "TOTP device removed successfully"}, "message": "TOTP device removed successfully"}
	if fmt.Sprint(ex) != fmt.Sprint(want) {
		t.Fatalf("example = %v, want the vendor's %v", ex, want)
	}
}

func mapOf(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// reencode turns a value decoded by encoding/json into jsonschema's own form.
func reencode(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// conform checks a live answer against the document: the operation of method and
// path, a documented status, a documented media type, the schema of that status,
// and the required headers. It returns the template the path matched.
func conform(t testing.TB, d *apiDoc, method, path string, r response) string {
	t.Helper()
	path, _, _ = strings.Cut(path, "?")
	var tmpl string
	for _, p := range d.paths {
		if p.re.MatchString(path) {
			tmpl = p.template
			break
		}
	}
	if tmpl == "" {
		t.Fatalf("%s %s: no path of openapi.json matches", method, path)
	}
	key := method + " " + tmpl
	op, ok := d.operations()[key]
	if !ok {
		t.Fatalf("%s: not documented", key)
	}
	base := pointer("paths", tmpl, strings.ToLower(method))
	status := fmt.Sprint(r.Status)
	resp, ok := mapOf(op["responses"])[status]
	if !ok {
		t.Fatalf("%s answered %d, which is not documented: %s", key, r.Status, r.Raw)
	}
	rm, ptr := d.resolve(resp, base+pointer("responses", status))
	for name, h := range mapOf(rm["headers"]) {
		hm, _ := d.resolve(h, "")
		if hm["required"] == true && r.Header.Get(name) == "" {
			t.Errorf("%s %d: required header %s is missing", key, r.Status, name)
		}
	}
	content := mapOf(rm["content"])
	if len(content) == 0 {
		return tmpl
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	if err != nil {
		t.Fatalf("%s %d: Content-Type %q: %v", key, r.Status, r.Header.Get(echo.HeaderContentType), err)
	}
	if _, ok := content[mt]; !ok {
		t.Fatalf("%s %d: Content-Type %s is not documented (%v)", key, r.Status, mt, keys(content))
	}
	sch, err := d.schema(ptr + pointer("content", mt, "schema"))
	if err != nil {
		t.Fatalf("%s %d: schema: %v", key, r.Status, err)
	}
	var body any
	if strings.HasSuffix(mt, "json") {
		if body, err = jsonschema.UnmarshalJSON(bytes.NewReader(r.Raw)); err != nil {
			t.Fatalf("%s %d: body is not JSON: %v\n%s", key, r.Status, err, r.Raw)
		}
	} else {
		body = string(r.Raw)
	}
	if err := sch.Validate(body); err != nil {
		t.Errorf("%s %d: the answer does not match openapi.json:\n%v\n%s", key, r.Status, err, r.Raw)
	}
	return tmpl
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// liveChecker sends requests to a stack and checks every answer against the document,
// remembering which operation answered which status.
type liveChecker struct {
	t    *testing.T
	s    *stack
	d    *apiDoc
	seen map[string]bool
}

// do sends a request (token "" sends none) and checks the answer; it returns it for
// the test's own assertions.
func (c *liveChecker) do(token, method, path, body string, headers ...string) response {
	c.t.Helper()
	if token != "" {
		headers = append([]string{"Authorization", "Bearer " + token}, headers...)
	}
	r := rawCall(c.t, c.s.URL, method, path, body, headers...)
	tmpl := conform(c.t, c.d, method, path, r)
	c.seen[fmt.Sprintf("%s %s %d", method, tmpl, r.Status)] = true
	return r
}

// expect checks the status too.
func (c *liveChecker) expect(status int, token, method, path, body string, headers ...string) response {
	c.t.Helper()
	r := c.do(token, method, path, body, headers...)
	if r.Status != status {
		c.t.Fatalf("%s %s: got %d %s, want %d", method, path, r.Status, r.Raw, status)
	}
	return r
}

// TestOpenAPILive drives the real stack through the seed endpoints of shared/seeds and
// most others, successes and failures, and validates every answer against the schema
// documented for its status.
func TestOpenAPILive(t *testing.T) {
	d := loadDoc(t)
	s := newStack(t)
	c := &liveChecker{t: t, s: s, d: d, seen: map[string]bool{}}
	alice := s.token("alice")
	admin := s.token("helpdesk", jwt.MapClaims{"scope": "mfa:admin"})
	codeBody := `{"code":"%s"}`

	// Operations routes.
	c.expect(200, "", "GET", "/healthz", "")
	c.expect(200, "", "GET", "/readyz", "")
	c.expect(200, "", "GET", "/metrics", "")
	c.expect(200, "", "GET", "/openapi.json", "")

	// Banking: POST /settings/MfaSecret (seed 001).
	c.expect(401, "", "POST", "/settings/MfaSecret", "")
	c.expect(400, alice, "POST", "/settings/MfaSecret", `{"mfaMethod":"sms"}`)
	c.expect(400, alice, "POST", "/settings/MfaSecret", `{"mfaMethod":`)
	c.expect(200, alice, "POST", "/settings/MfaSecret", `{"mfaMethod":"authenticator"}`)
	created := c.expect(200, alice, "POST", "/settings/MfaSecret", "")
	secret := created.Body["secret"].(string)
	c.expect(400, alice, "POST", "/settings/MfaSignIn", fmt.Sprintf(`{"mfaMethod":"authenticator","code":"%s"}`, wrongCode(codeAt(t, secret, s.Clock.Now()))))
	c.expect(400, alice, "POST", "/settings/MfaSignIn", `{"code":"123456"}`)
	c.expect(200, alice, "POST", "/settings/MfaSignIn", fmt.Sprintf(`{"mfaMethod":"authenticator","code":"%s"}`, codeAt(t, secret, s.Clock.Now())))
	s.Clock.Advance(30 * time.Second)
	c.expect(409, alice, "POST", "/settings/MfaSecret", "")
	c.expect(200, alice, "GET", "/settings/Mfa", "")
	c.expect(200, alice, "POST", "/settings/MfaSignIn", `{"mfaMethod":"sms","phoneNumber":"+34600123456"}`)

	// Banking: DELETE /settings/MfaSignIn (seed 002) and DELETE /settings/MfaSecret
	// (seed 000).
	c.expect(401, "", "DELETE", "/settings/MfaSignIn", "")
	c.expect(200, alice, "DELETE", "/settings/MfaSignIn", "")
	c.expect(401, "not-a-token", "DELETE", "/settings/MfaSecret", "")
	c.expect(400, alice, "DELETE", "/settings/MfaSecret", `[`)
	if r := c.expect(200, alice, "DELETE", "/settings/MfaSecret", ""); r.Body["removed"] != 1.0 {
		t.Fatalf("removed = %v, want 1", r.Body["removed"])
	}
	c.expect(200, alice, "DELETE", "/settings/MfaSecret", "", "Content-Type", "application/json")

	// Device dialect, with DELETE /api/v1/mfa/totp/devices/{device_id} (seed 004).
	bob := s.token("bob")
	c.expect(422, bob, "POST", "/api/v1/mfa/totp/setup", `{}`)
	c.expect(400, bob, "POST", "/api/v1/mfa/totp/setup", `{"device_name":7}`)
	c.expect(400, bob, "POST", "/api/v1/mfa/totp/verify", fmt.Sprintf(codeBody, "123456"))
	c.expect(200, bob, "POST", "/api/v1/mfa/totp/setup", `{"device_name":"Work phone"}`)
	dev := s.enrol("bob", "Home tablet")
	c.expect(422, bob, "POST", "/api/v1/mfa/totp/verify", `{"code":"12"}`)
	c.expect(200, bob, "GET", "/api/v1/mfa/totp/devices", "")
	c.expect(200, bob, "GET", "/api/v1/mfa/backup-codes", "")
	regen := c.expect(200, bob, "POST", "/api/v1/mfa/backup-codes/regenerate", "")
	backup := get(regen.Body, "data", "backup_codes", 0).(string)
	c.expect(200, bob, "GET", "/api/v1/mfa/status", "", "Accept-Language", "es")
	c.expect(200, bob, "POST", "/api/v1/mfa/verify", fmt.Sprintf(codeBody, s.code(dev)))
	s.Clock.Advance(30 * time.Second)
	c.expect(200, bob, "POST", "/api/v1/mfa/verify", `{"backup_code":"`+backup+`"}`)
	c.expect(422, bob, "POST", "/api/v1/mfa/verify", `{}`)
	c.expect(403, bob, "POST", "/api/v1/mfa/verify", `{"code":"123456","user_id":"alice"}`)
	c.expect(400, bob, "POST", "/api/v1/mfa/otp/send", `{"method":"fax"}`)
	c.expect(404, bob, "POST", "/api/v1/mfa/otp/send", `{"method":"email"}`)
	c.expect(400, bob, "DELETE", "/api/v1/mfa/totp/devices/abc", "")
	c.expect(400, bob, "DELETE", "/api/v1/mfa/totp/devices/0"+itoa(dev.ID), "")
	c.expect(400, bob, "DELETE", "/api/v1/mfa/totp/devices/"+itoa(dev.ID), "{")
	c.expect(404, bob, "DELETE", "/api/v1/mfa/totp/devices/999999", "")
	c.expect(401, "", "DELETE", "/api/v1/mfa/totp/devices/1", "")
	removed := c.expect(200, bob, "DELETE", "/api/v1/mfa/totp/devices/"+itoa(dev.ID), "", "Idempotency-Key", "rm-1")
	// The vendor's example, exactly (API.md §2 and shared/seeds/004).
	if !jsonEqual(t, removed.Raw, `{"success":true,"data":{"success":true,"message":"TOTP device removed successfully"},"message":"TOTP device removed successfully"}`) {
		t.Errorf("removal answer %s is not the vendor's example", removed.Raw)
	}
	c.expect(200, bob, "DELETE", "/api/v1/mfa/totp/devices/"+itoa(dev.ID), "", "Idempotency-Key", "rm-1")
	c.expect(409, bob, "DELETE", "/api/v1/mfa/totp/devices/"+itoa(dev.ID+1), "", "Idempotency-Key", "rm-1")
	c.expect(400, bob, "POST", "/api/v1/mfa/verify", fmt.Sprintf(codeBody, "123456"))
	c.expect(400, bob, "POST", "/api/v1/mfa/backup-codes/regenerate", "")
	c.expect(413, bob, "POST", "/api/v1/mfa/totp/setup", `{"device_name":"`+strings.Repeat("x", handlers.MaxBody)+`"}`)

	// Lockout: the threshold-th failure still answers 400, then 429 with Retry-After.
	carol := s.token("carol")
	cd := s.enrol("carol", "Phone")
	for i := 0; i < 5; i++ {
		c.expect(400, carol, "POST", "/api/v1/mfa/verify", fmt.Sprintf(codeBody, wrongCode(s.code(cd))))
	}
	c.expect(429, carol, "POST", "/api/v1/mfa/verify", fmt.Sprintf(codeBody, s.code(cd)))

	// DruID: POST /activityid/v1/mfa/delete (seed 003), update, validate.
	dave := s.token("dave")
	s.enrol("dave", "Phone")
	activity := func(actor, verb, ctx string) string {
		return `{"actor":{"id":"` + actor + `","objectType":"person"},"verb":"` + verb + `","object":{"objectType":"user"},` +
			`"source":{"id":"pc","objectType":"device"},"context":{` + ctx + `}}`
	}
	from := []string{"From", "bank-web", "Accept", "application/json"}
	c.expect(401, "", "POST", "/activityid/v1/mfa/delete", activity("dave", "delete", `"mfa_channel":"totp"`), from...)
	c.expect(400, dave, "POST", "/activityid/v1/mfa/delete", activity("dave", "delete", `"mfa_channel":"totp"`))
	c.expect(400, dave, "POST", "/activityid/v1/mfa/delete", activity("dave", "remove", `"mfa_channel":"fax"`), from...)
	c.expect(403, dave, "POST", "/activityid/v1/mfa/delete", activity("erin", "delete", `"mfa_channel":"totp"`), from...)
	c.expect(417, dave, "POST", "/activityid/v1/mfa/delete", activity("dave", "delete", `"mfa_channel":"sms"`), from...)
	c.expect(200, dave, "POST", "/activityid/v1/mfa/delete", activity("dave", "delete", `"mfa_channel":"totp"`), from...)
	c.expect(200, dave, "POST", "/activityid/v1/mfa/update", activity("dave", "update", `"mfa_channel":"sms","mfa_channel_address":"+34600123456"`), from...)
	c.expect(417, dave, "POST", "/activityid/v1/mfa/validate", activity("dave", "validate", `"mfa_channel":"sms","mfa_code":"000000"`), from...)

	// Audit and admin.
	c.expect(200, bob, "GET", "/api/v1/audit?limit=2", "")
	c.expect(400, bob, "GET", "/api/v1/audit?limit=many", "")
	c.expect(422, bob, "GET", "/api/v1/audit?since=yesterday", "")
	c.expect(403, bob, "GET", "/api/v1/audit?user_id=alice", "")
	c.expect(200, admin, "GET", "/api/v1/audit?user_id=alice&type=totp.device_removed", "")
	c.expect(403, bob, "GET", "/api/v1/admin/users/carol/mfa", "")
	c.expect(200, admin, "GET", "/api/v1/admin/users/carol/mfa", "")
	c.expect(400, admin, "DELETE", "/api/v1/admin/users/carol/mfa", "{")
	c.expect(200, admin, "DELETE", "/api/v1/admin/users/carol/mfa", "")

	// Dashboard: the page is public, its data admin only.
	c.expect(302, "", "GET", "/dashboard", "")
	c.expect(200, "", "GET", "/dashboard/", "")
	c.expect(200, "", "GET", "/dashboard/app.js", "")
	c.expect(404, "", "GET", "/dashboard/nope.txt", "")
	c.expect(403, bob, "GET", "/api/v1/dashboard/stats", "")
	c.expect(200, admin, "GET", "/api/v1/dashboard/stats", "")
	c.expect(403, bob, "GET", "/api/v1/dashboard/events", "")
	if r := c.do(admin, "GET", "/api/v1/dashboard/events", "", "Last-Event-ID", "x"); r.Status != 422 && r.Status != 503 {
		t.Fatalf("events with a bad Last-Event-ID: %d %s", r.Status, r.Raw)
	}

	// Security as documented: every operation that needs a token refuses none with 401,
	// every public one answers without.
	for key, op := range d.operations() {
		method, tmpl, _ := strings.Cut(key, " ")
		path := strings.NewReplacer("{device_id}", "1", "{user_id}", "carol", "{path}", "index.html").Replace(tmpl)
		r := rawCall(t, s.URL, method, path, "")
		if publicRoutes[key] != (r.Status != http.StatusUnauthorized) {
			t.Errorf("%s without a token answered %d (public: %v)", key, r.Status, publicRoutes[key])
		}
		if _, ok := mapOf(op["responses"])[fmt.Sprint(r.Status)]; !ok {
			t.Errorf("%s without a token answered %d, which is not documented", key, r.Status)
		}
	}

	var seen []string
	for k := range c.seen {
		seen = append(seen, k)
	}
	sort.Strings(seen)
	t.Logf("checked %d operation/status pairs:\n%s", len(seen), strings.Join(seen, "\n"))
}

// TestOpenAPILiveStepUp: a removal with a stale authentication answers the documented
// 401 in each dialect.
func TestOpenAPILiveStepUp(t *testing.T) {
	d := loadDoc(t)
	s := newStack(t, func(o *stackOptions) { o.handler.StepUpMaxAge = 5 * time.Minute })
	c := &liveChecker{t: t, s: s, d: d, seen: map[string]bool{}}
	dev := s.enrol("frank", "Phone")
	old := s.token("frank", jwt.MapClaims{"auth_time": s.Clock.Now().Add(-time.Hour).Unix()})
	r := c.expect(401, old, "DELETE", "/api/v1/mfa/totp/devices/"+itoa(dev.ID), "")
	if errorCode(r) != "UNAUTHORIZED" {
		t.Fatalf("code %q, want UNAUTHORIZED", errorCode(r))
	}
	c.expect(401, old, "DELETE", "/settings/MfaSecret", "")
	c.expect(401, old, "POST", "/activityid/v1/mfa/delete",
		`{"actor":{"id":"frank","objectType":"person"},"verb":"delete","object":{"objectType":"user"},"source":{"id":"pc","objectType":"device"},"context":{"mfa_channel":"totp"}}`,
		"From", "bank-web")
}

// rawCall is stack.call for answers of any media type (the metrics, the dashboard's
// files); Body is set only for a JSON object. Redirects are not followed.
func rawCall(t testing.TB, base, method, path, body string, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	_ = json.Unmarshal(raw, &out.Body)
	return out
}

func jsonEqual(t testing.TB, got []byte, want string) bool {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// TestOpenAPIConformRejects: the checks bite. A body that breaks the documented schema
// of its status (a code the operation never answers, a field the schema lacks, a
// wrong envelope) fails validation.
func TestOpenAPIConformRejects(t *testing.T) {
	d := loadDoc(t)
	op := d.operations()["DELETE /api/v1/mfa/totp/devices/{device_id}"]
	_, ptr := d.resolve(mapOf(op["responses"])["404"], pointer("paths", "/api/v1/mfa/totp/devices/{device_id}", "delete", "responses", "404"))
	sch, err := d.schema(ptr + pointer("content", "application/json", "schema"))
	if err != nil {
		t.Fatal(err)
	}
	good := `{"success":false,"error":{"code":"DEVICE_NOT_FOUND","message":"m","timestamp":"2025-06-01T12:00:00Z"},"message":"m"}`
	for name, body := range map[string]string{
		"good":          good,
		"other code":    strings.Replace(good, "DEVICE_NOT_FOUND", "INVALID_CODE", 1),
		"extra field":   strings.Replace(good, `"message":"m"}`, `"message":"m","debug":1}`, 1),
		"bad timestamp": strings.Replace(good, "2025-06-01T12:00:00Z", "yesterday", 1),
		"success true":  strings.Replace(good, `"success":false`, `"success":true`, 1),
		"problem+json":  `{"type":"urn:mfad:problem:device-not-found","title":"t","status":404,"detail":"d","code":"DEVICE_NOT_FOUND"}`,
	} {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(v); (err == nil) != (name == "good") {
			t.Errorf("%s: validation error %v", name, err)
		}
	}
}
