package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/channels"
)

// benchStore is a store of 1,000 users with two verified TOTP devices each.
func benchStore(b *testing.B) *Store {
	b.Helper()
	store, err := Open(context.Background(), filepath.Join(b.TempDir(), "mfad.db"), testChain(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	t0 := time.Now()
	errs := store.Write(context.Background(), []channels.Unit{{Run: func(ctx context.Context, tx channels.Tx) error {
		for i := range 1000 {
			u := fmt.Sprint("user-", i)
			if err := tx.EnsureUser(ctx, u, t0); err != nil {
				return err
			}
			for d := range 2 {
				id, err := tx.InsertMethod(ctx, channels.NewMethod{UserID: u, Kind: mfa.KindTOTP, Label: fmt.Sprint("d", d),
					SecretEnc: make([]byte, 57), Algorithm: "SHA1", Digits: 6, Period: 30, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)})
				if err != nil {
					return err
				}
				if _, err := tx.MarkVerified(ctx, id, t0, 1, 0); err != nil {
					return err
				}
			}
		}
		return nil
	}}})
	if errs[0] != nil {
		b.Fatal(errs[0])
	}
	return store
}

// BenchmarkStatusReads is the status command's reads: the user, the method list with
// its primary, the backup code counts, in one read transaction.
func BenchmarkStatusReads(b *testing.B) {
	store := benchStore(b)
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		u := fmt.Sprint("user-", i%1000)
		i++
		err := store.Read(ctx, func(ctx context.Context, tx channels.Tx) error {
			if _, err := tx.User(ctx, u); err != nil {
				return err
			}
			if ms, err := tx.ListMethods(ctx, u, ""); err != nil || len(ms) != 2 {
				return fmt.Errorf("%d methods, %v", len(ms), err)
			}
			_, _, err := tx.BackupCodeCounts(ctx, u)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListMethods is the method list alone.
func BenchmarkListMethods(b *testing.B) {
	store := benchStore(b)
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	err := store.Read(ctx, func(ctx context.Context, tx channels.Tx) error {
		for b.Loop() {
			u := fmt.Sprint("user-", i%1000)
			i++
			if ms, err := tx.ListMethods(ctx, u, ""); err != nil || len(ms) != 2 {
				return fmt.Errorf("%d methods, %v", len(ms), err)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
