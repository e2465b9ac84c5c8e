package audit_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/audit"
)

// TestLinksAreTheDocumentedForm: a record's hash is the HMAC, under the derived chain
// key, of the canonical form forgeHash writes field by field, for records linked one
// at a time and from many goroutines at once (the links share reused HMACs), and under
// a retired key as well as the primary one.
func TestLinksAreTheDocumentedForm(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{3}, audit.KeySize), bytes.Repeat([]byte{4}, audit.KeySize)
	old, err := audit.NewChain(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := audit.NewChain(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	derived := func(k []byte) []byte { return mfa.DeriveKey(k, "mfad audit chain v2") }
	events := []mfa.Event{
		{ID: mfa.NewID(), Type: mfa.EventSignInDisabled, UserID: "alice", Actor: "alice", Time: time.UnixMilli(1)},
		{ID: mfa.NewID(), Type: mfa.EventTOTPDeviceRemoved, UserID: "bob", Actor: "ops", EntryPoint: "bank-web", Source: "druid",
			Time: time.UnixMilli(1_764_460_800_000), Object: mfa.EventObject{Type: mfa.ObjectTOTPDevice, Name: strings.Repeat("x", 5000)}},
	}
	check := func(c *audit.Chain, key []byte, ev mfa.Event, seq int64, prev []byte) error {
		r, err := c.Next(ev, seq, prev)
		if err != nil {
			return err
		}
		want := forgeHash(derived(key), seq, r.EventID, r.Type, r.UserID, r.Actor, r.EntryPoint, r.Source, r.Body, r.KeyID, prev, r.CreatedAt)
		if !bytes.Equal(r.Hash, want) {
			return fmt.Errorf("record %d: hash %x, want %x", seq, r.Hash, want)
		}
		if ok, err := rotated.Matches(&r); !ok || err != nil {
			return fmt.Errorf("record %d does not verify after the rotation: %v %v", seq, ok, err)
		}
		return nil
	}
	prev := audit.Genesis
	for i, ev := range events {
		if err := check(old, oldKey, ev, int64(i+1), prev); err != nil {
			t.Fatal(err)
		}
		if err := check(rotated, newKey, ev, int64(i+1), prev); err != nil {
			t.Fatal(err)
		}
		prev = bytes.Repeat([]byte{byte(i)}, 32)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				ev := events[(g+i)%len(events)]
				if err := check(rotated, newKey, ev, int64(g*1000+i), bytes.Repeat([]byte{byte(i)}, 32)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkNext links one record of a device removal's size: the cost every audit
// record pays in the writer.
func BenchmarkNext(b *testing.B) {
	c, err := audit.NewChain(bytes.Repeat([]byte{3}, audit.KeySize))
	if err != nil {
		b.Fatal(err)
	}
	ev := mfa.Event{ID: mfa.NewID(), Type: mfa.EventTOTPDeviceRemoved, UserID: "user-0042", Actor: "user-0042", EntryPoint: "bank-web",
		Time: time.UnixMilli(1_764_460_800_000), Object: mfa.EventObject{Type: mfa.ObjectTOTPDevice, ID: "17", Name: "Phone"}}
	prev := audit.Genesis
	b.ReportAllocs()
	for i := range b.N {
		r, err := c.Next(ev, int64(i+1), prev)
		if err != nil {
			b.Fatal(err)
		}
		prev = r.Hash
	}
}
