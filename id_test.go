package mfa

import (
	"regexp"
	"testing"
	"time"
)

var uuidV7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewIDIsATimeOrderedUUIDv7(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for i := range 1000 {
		id := NewID()
		if !uuidV7.MatchString(id) {
			t.Fatalf("%q is not a version 7 UUID", id)
		}
		if seen[id] {
			t.Fatalf("%q repeated", id)
		}
		seen[id] = true
		if i%100 == 0 {
			time.Sleep(2 * time.Millisecond)
			if id[:13] < prev {
				t.Fatalf("%s sorts before %s", id, prev)
			}
			prev = id[:13]
		}
	}
}
