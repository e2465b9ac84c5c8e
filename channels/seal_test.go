package channels

import (
	"bytes"
	"testing"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func TestSealer(t *testing.T) {
	s, _ := NewSealer(key(3))
	sealed := s.Seal([]byte("JBSWY3DPEHPK3PXP"), []byte("alice"))
	if bytes.Contains(sealed, []byte("JBSWY3DPEHPK3PXP")) {
		t.Fatal("plaintext visible")
	}
	if got, err := s.Open(sealed, []byte("alice")); err != nil || string(got) != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := s.Open(sealed, []byte("bob")); err == nil {
		t.Fatal("a value sealed for alice opened for bob")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := s.Open(sealed, []byte("alice")); err == nil {
		t.Fatal("a tampered value opened")
	}
	if _, err := NewSealer([]byte("short")); err == nil {
		t.Fatal("a short key was accepted")
	}
	id, sum := s.Hash("alice", "abcd-efgh")
	if !s.Match(id, "alice", "abcd-efgh", sum) || s.Match(id, "bob", "abcd-efgh", sum) || s.Match(id, "alice", "abcd-efgi", sum) {
		t.Fatal("keyed hash matches wrongly")
	}
}
