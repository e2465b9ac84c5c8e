package channels

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
)

var canaryPlain = []byte("mfad key canary v1")

const canaryName = "key_canary"

// keyCheckLock is the unit's lock name when checking the key: workers starting at once
// on a new database (PostgreSQL) check one after the other, so the second sees the
// first's canary instead of sealing its own over it. No user id can start with NUL.
const keyCheckLock = "\x00key_canary"

// checkKey refuses to start with a key that cannot open what this database holds. A new
// database gets a canary sealed with the primary key; an existing one must open its
// canary with one of the configured keys. Failing here, at start and with the key ids
// named, is better than failing at a user's first sign-in.
func checkKey(ctx context.Context, store Store, sealer *Sealer) error {
	errs := store.Write(ctx, []Unit{{UserID: keyCheckLock, Run: func(ctx context.Context, tx Tx) error {
		canary, found, err := tx.Meta(ctx, canaryName)
		if err != nil {
			return err
		}
		if !found {
			return tx.SetMeta(ctx, canaryName, sealer.Seal(canaryPlain, []byte("store_meta")))
		}
		plain, err := sealer.Open(canary, []byte("store_meta"))
		if err != nil || !bytes.Equal(plain, canaryPlain) {
			return fmt.Errorf("the secret key does not match this database: it was sealed with key id %s, configured key ids are %s (set MFAD_SECRET_KEY to the key the data was created with): %w",
				KeyOf(canary), strings.Join(sealer.KeyIDs(), ", "), ErrUnknownKey)
		}
		if KeyOf(canary) != sealer.PrimaryKeyID() {
			return tx.SetMeta(ctx, canaryName, sealer.Seal(canaryPlain, []byte("store_meta")))
		}
		return nil
	}}})
	if err := errs[0]; err != nil {
		if errors.Is(err, ErrUnknownKey) {
			return err
		}
		return fmt.Errorf("check the secret key against the database: %w", err)
	}
	return nil
}
