package activity

import (
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"

	mfa "github.com/mfad/mfad"
)

// decodeReadReply decodes the reply of a status or device-list read without reflection:
// those are the replies API nodes decode most, and encoding/json spent about 20 µs of a
// status read's 180 on one (BENCHMARKS.md). It handles what the worker writes
// (mfa.Reply.AppendJSON of json.Marshal'ed data: compact, known keys, strings without
// escapes) and returns ok false on anything else (whitespace, an escape, an unknown or
// differently-cased key, another data type), for decodeReply to give to encoding/json.
// When ok, the result is the one encoding/json gives: FuzzDecodeReadReply holds it to
// that.
func decodeReadReply(body []byte, data any) (mfa.Reply, bool) {
	switch d := data.(type) {
	case *mfa.Status:
		return readInto(body, d, (*reader).status)
	case *mfa.Devices:
		return readInto(body, d, (*reader).devices)
	}
	return mfa.Reply{}, false
}

// readInto reads the reply with its data into a fresh T, and stores that in *d only
// once the whole reply is taken: a refused reply leaves *d as it was, for
// encoding/json. A nil or filled *d is refused outright, since encoding/json merges
// into what is there.
func readInto[T any](body []byte, d *T, readData func(*reader, *T) bool) (reply mfa.Reply, ok bool) {
	if d == nil || !reflect.ValueOf(d).Elem().IsZero() {
		return mfa.Reply{}, false
	}
	var data T
	r := &reader{b: body}
	ok = r.object(func(key []byte) bool {
		switch string(key) {
		case "ok":
			return r.bool(&reply.OK)
		case "code":
			return r.string(&reply.Code)
		case "message":
			return r.string(&reply.Message)
		case "field":
			return r.string(&reply.Field)
		case "reason":
			return r.string(&reply.Reason)
		case "retry_after":
			return r.int(&reply.RetryAfter)
		case "replayed":
			return r.bool(&reply.Replayed)
		case "data":
			return readData(r, &data)
		}
		return false
	})
	if !ok || r.i != len(r.b) {
		return mfa.Reply{}, false
	}
	*d = data
	return reply, true
}

func (r *reader) status(st *mfa.Status) bool {
	return r.object(func(key []byte) bool {
		switch string(key) {
		case "user_id":
			return r.string(&st.UserID)
		case "signin_enabled":
			return r.bool(&st.SignInEnabled)
		case "methods":
			return r.methods(&st.Methods)
		case "backup_codes_remaining":
			return r.int(&st.BackupCodesRemaining)
		case "backup_codes_total":
			return r.int(&st.BackupCodesTotal)
		case "locked_until":
			return r.timePtr(&st.LockedUntil)
		case "failed_attempts":
			return r.int(&st.FailedAttempts)
		}
		return false
	})
}

func (r *reader) devices(d *mfa.Devices) bool {
	return r.object(func(key []byte) bool {
		if string(key) == "devices" {
			return r.methods(&d.Devices)
		}
		return false
	})
}

// methods decodes an array of methods, or null, into a fresh slice (encoding/json
// replaces a nil slice: [] gives an empty one, null leaves nil).
func (r *reader) methods(ms *[]mfa.Method) bool {
	if r.literal("null") {
		*ms = nil
		return true
	}
	if !r.byte('[') {
		return false
	}
	out := make([]mfa.Method, 0, 4)
	if r.byte(']') {
		*ms = out
		return true
	}
	for {
		var m mfa.Method
		if !r.method(&m) {
			return false
		}
		out = append(out, m)
		if r.byte(']') {
			*ms = out
			return true
		}
		if !r.byte(',') {
			return false
		}
	}
}

func (r *reader) method(m *mfa.Method) bool {
	return r.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return r.int64(&m.ID)
		case "kind":
			var s string
			ok := r.string(&s)
			m.Kind = mfa.Kind(s)
			return ok
		case "label":
			return r.string(&m.Label)
		case "destination":
			return r.string(&m.Destination)
		case "verified":
			return r.bool(&m.Verified)
		case "voluntary":
			return r.bool(&m.Voluntary)
		case "primary":
			return r.bool(&m.Primary)
		case "entry_point":
			return r.string(&m.EntryPoint)
		case "created_at":
			return r.time(&m.CreatedAt)
		case "verified_at":
			return r.timePtr(&m.VerifiedAt)
		case "last_used_at":
			return r.timePtr(&m.LastUsedAt)
		}
		return false
	})
}

// reader walks compact JSON, refusing (false) whatever it does not handle.
type reader struct {
	b []byte
	i int
}

func (r *reader) byte(c byte) bool {
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

func (r *reader) literal(s string) bool {
	if len(r.b)-r.i >= len(s) && string(r.b[r.i:r.i+len(s)]) == s {
		r.i += len(s)
		return true
	}
	return false
}

// object reads {"key":value,...}, value by value through field, which reads the value
// of key and refuses a key it does not know. A repeated key is refused too: encoding/json
// merges the second value into the first, which this reader does not copy.
func (r *reader) object(field func(key []byte) bool) bool {
	if !r.byte('{') {
		return false
	}
	if r.byte('}') {
		return true
	}
	var seen [12][]byte
	n := 0
	for {
		key, ok := r.rawString()
		if !ok || n == len(seen) {
			return false
		}
		for _, k := range seen[:n] {
			if string(k) == string(key) {
				return false
			}
		}
		seen[n] = key
		n++
		if !r.byte(':') || !field(key) {
			return false
		}
		if r.byte('}') {
			return true
		}
		if !r.byte(',') {
			return false
		}
	}
}

// rawString reads a string with no escape, no control character and valid UTF-8, the
// cases in which its bytes are its value.
func (r *reader) rawString() ([]byte, bool) {
	if !r.byte('"') {
		return nil, false
	}
	start, ascii := r.i, true
	for ; r.i < len(r.b); r.i++ {
		switch c := r.b[r.i]; {
		case c == '"':
			s := r.b[start:r.i]
			r.i++
			return s, ascii || utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

func (r *reader) string(s *string) bool {
	b, ok := r.rawString()
	*s = string(b)
	return ok
}

func (r *reader) bool(v *bool) bool {
	switch {
	case r.literal("true"):
		*v = true
	case r.literal("false"):
		*v = false
	default:
		return false
	}
	return true
}

// number reads a JSON integer: an optional minus, then 0 or a digit string not starting
// with 0. A fraction or exponent is left to encoding/json (which refuses it for an int).
func (r *reader) number() (int64, bool) {
	start := r.i
	r.byte('-')
	digits := r.i
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		r.i++
	}
	if r.i == digits || r.b[digits] == '0' && r.i-digits > 1 {
		return 0, false
	}
	if r.i < len(r.b) && (r.b[r.i] == '.' || r.b[r.i] == 'e' || r.b[r.i] == 'E') {
		return 0, false
	}
	n, err := strconv.ParseInt(string(r.b[start:r.i]), 10, 64)
	return n, err == nil
}

func (r *reader) int64(v *int64) bool {
	n, ok := r.number()
	*v = n
	return ok
}

func (r *reader) int(v *int) bool {
	n, ok := r.number()
	if int64(int(n)) != n {
		return false
	}
	*v = int(n)
	return ok
}

// time reads a quoted RFC 3339 time with time.Time's own UnmarshalJSON, which is what
// encoding/json calls.
func (r *reader) time(t *time.Time) bool {
	start := r.i
	if _, ok := r.rawString(); !ok {
		return false
	}
	return t.UnmarshalJSON(r.b[start:r.i]) == nil
}

func (r *reader) timePtr(t **time.Time) bool {
	if r.literal("null") {
		*t = nil
		return true
	}
	var v time.Time
	if !r.time(&v) {
		return false
	}
	*t = &v
	return true
}
