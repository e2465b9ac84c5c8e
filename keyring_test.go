package mfa

import (
	"slices"
	"testing"
)

func TestKeyRing(t *testing.T) {
	tests := []struct {
		name    string
		add     []string // ids, each stored with the value "v<position>"
		primary string
		ids     []string
	}{
		{"empty", nil, "", nil},
		{"one key", []string{"a"}, "a", []string{"a"}},
		{"configured order kept, first is primary", []string{"c", "a", "b"}, "c", []string{"c", "a", "b"}},
		{"a key given twice keeps its first place", []string{"a", "b", "a"}, "a", []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r KeyRing[string]
			for i, id := range tt.add {
				r.Add(id, "v"+string(rune('0'+i)))
			}
			if got := r.PrimaryID(); got != tt.primary {
				t.Fatalf("primary %q, want %q", got, tt.primary)
			}
			if got := r.IDs(); !slices.Equal(got, tt.ids) {
				t.Fatalf("ids %v, want %v", got, tt.ids)
			}
			if len(tt.add) > 0 {
				if v, ok := r.Get(tt.add[0]); !ok || v != r.Primary() {
					t.Fatalf("the primary key reads %q %v, Primary() %q", v, ok, r.Primary())
				}
			}
			if _, ok := r.Get("absent"); ok {
				t.Fatal("an absent id was found")
			}
		})
	}
}

func TestDeriveKeySeparatesUses(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	a, b := DeriveKey(key, "use a"), DeriveKey(key, "use b")
	if len(a) != 32 || slices.Equal(a, b) || !slices.Equal(a, DeriveKey(key, "use a")) {
		t.Fatalf("derived keys %x %x", a, b)
	}
}
