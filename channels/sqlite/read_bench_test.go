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
func benchStore(b *testing.B) *Store { return benchStoreOf(b, 1000, 2, 0) }

// benchStoreOf is a store of users × devices verified TOTP devices and codes backup
// codes per user. Devices are added a round at a time across all users, as a database
// grows: one user's devices lie on different pages, as they do after months of use
// (and after mfaload's seeding).
func benchStoreOf(b *testing.B, users, devices, codes int) *Store {
	b.Helper()
	store, err := Open(context.Background(), filepath.Join(b.TempDir(), "mfad.db"), testChain(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	t0 := time.Now()
	errs := store.Write(context.Background(), []channels.Unit{{Run: func(ctx context.Context, tx channels.Tx) error {
		for i := range users {
			u := fmt.Sprint("user-", i)
			if err := tx.EnsureUser(ctx, u, t0); err != nil {
				return err
			}
			hashes := make([]channels.CodeHash, codes)
			for c := range hashes {
				hashes[c] = channels.CodeHash{KeyID: "k", Sum: []byte(fmt.Sprint(u, c))}
			}
			if _, err := tx.ReplaceBackupCodes(ctx, u, hashes, t0); err != nil {
				return err
			}
		}
		for d := range devices {
			for i := range users {
				u := fmt.Sprint("user-", i)
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
// its primary, the backup code counts, in one read transaction. "large" is 10,000 users
// with four devices and ten backup codes each, larger than a connection's page cache: a
// read there pays for every page it touches, which the covering indexes of schema 4
// keep to one per index (BENCHMARKS.md).
func BenchmarkStatusReads(b *testing.B) {
	for _, size := range []struct {
		name                  string
		users, devices, codes int
	}{{"small", 1000, 2, 0}, {"large", 10000, 4, 10}} {
		b.Run(size.name, func(b *testing.B) {
			store := benchStoreOf(b, size.users, size.devices, size.codes)
			ctx := context.Background()
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				// A stride through the users, so consecutive reads do not share pages.
				u := fmt.Sprint("user-", (i*7919)%size.users)
				i++
				err := store.Read(ctx, func(ctx context.Context, tx channels.Tx) error {
					if _, err := tx.User(ctx, u); err != nil {
						return err
					}
					if ms, err := tx.ListMethods(ctx, u, ""); err != nil || len(ms) != size.devices {
						return fmt.Errorf("%d methods, %v", len(ms), err)
					}
					total, _, err := tx.BackupCodeCounts(ctx, u)
					if err == nil && total != size.codes {
						err = fmt.Errorf("%d backup codes, want %d", total, size.codes)
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
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
