package sqlite

import (
	"context"
	"fmt"
	"testing"

	"github.com/mfad/mfad/channels"
)

// BenchmarkRemovalReads is the read a removal starts with, on 10,000 users with four
// devices and ten backup codes each (larger than a connection's page cache): the
// user and every verified method whole, against what a removal needs, answered from
// the methods_by_user index (UserAndMethodsToRemove).
func BenchmarkRemovalReads(b *testing.B) {
	store := benchStoreOf(b, 10000, 4, 10)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		read func(channels.Tx) func(context.Context, string) (channels.User, []channels.Method, error)
	}{
		{"whole", func(tx channels.Tx) func(context.Context, string) (channels.User, []channels.Method, error) {
			return tx.UserAndMethods
		}},
		{"to-remove", func(tx channels.Tx) func(context.Context, string) (channels.User, []channels.Method, error) {
			return tx.UserAndMethodsToRemove
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				// A stride through the users, so consecutive reads do not share pages.
				u := fmt.Sprint("user-", (i*7919)%10000)
				i++
				err := store.Read(ctx, func(ctx context.Context, tx channels.Tx) error {
					if _, ms, err := tc.read(tx)(ctx, u); err != nil || len(ms) != 4 {
						return fmt.Errorf("%d methods, %v", len(ms), err)
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
