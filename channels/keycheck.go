package channels

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

var canaryPlain = []byte("mfad key canary v1")

// checkKey refuses to start with a key that cannot open what this database holds. A new
// database gets a canary sealed with the primary key; an existing one must open its
// canary with one of the configured keys. Failing here, at start and with the key ids
// named, is better than failing at a user's first sign-in.
func checkKey(ctx context.Context, store *Store, sealer *Sealer) error {
	var canary []byte
	err := store.write.QueryRowContext(ctx, "SELECT value FROM store_meta WHERE name = 'key_canary'").Scan(&canary)
	if errors.Is(err, sql.ErrNoRows) {
		_, err = store.write.ExecContext(ctx, "INSERT INTO store_meta (name, value) VALUES ('key_canary', ?)",
			sealer.Seal(canaryPlain, []byte("store_meta")))
		if err != nil {
			return fmt.Errorf("record key canary: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read key canary: %w", err)
	}
	plain, err := sealer.Open(canary, []byte("store_meta"))
	if err != nil || !bytes.Equal(plain, canaryPlain) {
		ids := make([]string, 0, len(sealer.aeads))
		for id := range sealer.aeads {
			ids = append(ids, id)
		}
		return fmt.Errorf("the secret key does not match this database: it was sealed with key id %s, configured key ids are %s (set MFAD_SECRET_KEY to the key the data was created with): %w",
			KeyOf(canary), strings.Join(ids, ", "), ErrUnknownKey)
	}
	if KeyOf(canary) != sealer.PrimaryKeyID() {
		_, err = store.write.ExecContext(ctx, "UPDATE store_meta SET value = ? WHERE name = 'key_canary'",
			sealer.Seal(canaryPlain, []byte("store_meta")))
		if err != nil {
			return fmt.Errorf("re-seal key canary: %w", err)
		}
	}
	return nil
}
