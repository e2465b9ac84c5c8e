package channels

import (
	"context"
	"fmt"
)

// Key rotation (MFAD_SECRET_KEY): the first key seals, every configured key opens. To
// retire an old key its values are sealed again under the first: each method's secret
// or address when it is used, or all of them with Reseal (mfad keys reseal). Keyed
// hashes (backup codes, one-time codes) cannot be recomputed without the code: they
// go when the user regenerates their backup codes, or expire (one-time codes in
// minutes, idempotent replies in a day). KeyUsage says what each key still holds.

// sealFresh seals plain again under the primary key when sealed was sealed with an
// older one, and reports whether it did.
func (r *rules) sealFresh(sealed, plain, aad []byte) ([]byte, bool) {
	if sealed == nil || KeyOf(sealed) == r.sealer.PrimaryKeyID() {
		return sealed, false
	}
	return r.sealer.Seal(plain, aad), true
}

// openMethod opens m's sealed value (the address of a kind that has one, else the
// secret) and, when an older key sealed it, stores it sealed under the primary key.
func (r *rules) openMethod(ctx context.Context, tx Tx, m Method) ([]byte, error) {
	address := m.Kind.Rules().Address
	sealed, what := m.SecretEnc, "secret"
	if address {
		sealed, what = m.DestEnc, "address"
	}
	plain, err := r.sealer.Open(sealed, secretAAD(m.UserID))
	if err != nil {
		return nil, fmt.Errorf("open %s of method %d: %w", what, m.ID, err)
	}
	fresh, stale := r.sealFresh(sealed, plain, secretAAD(m.UserID))
	if !stale {
		return plain, nil
	}
	secret, dest := fresh, m.DestEnc
	if address {
		secret, dest = m.SecretEnc, fresh
	}
	return plain, tx.ResealMethod(ctx, m.ID, secret, dest)
}

// resealBatch is how many methods one transaction of Reseal seals again.
const resealBatch = 500

// Reseal seals every method's secret and address that an older key sealed again under
// the primary key, in transactions of resealBatch, and returns how many it sealed.
func Reseal(ctx context.Context, store Store, sealer *Sealer) (int, error) {
	r := &rules{sealer: sealer}
	var after int64
	total := 0
	for {
		from, last, n := after, after, 0
		errs := store.Write(ctx, []Unit{{Run: func(ctx context.Context, tx Tx) error {
			ms, err := tx.StaleMethods(ctx, sealer.PrimaryKeyID(), from, resealBatch)
			if err != nil {
				return err
			}
			last, n = from, 0
			for _, m := range ms {
				if _, err := r.openMethod(ctx, tx, m); err != nil {
					return err
				}
				last, n = m.ID, n+1
			}
			return nil
		}}})
		if errs[0] != nil {
			return total, errs[0]
		}
		after = last
		total += n
		if n < resealBatch {
			return total, nil
		}
	}
}

// KeyUsage is what each sealing key still seals or keys in store.
func KeyUsage(ctx context.Context, store Store) ([]KeyUse, error) {
	var out []KeyUse
	err := store.Read(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		out, err = tx.KeyUsage(ctx)
		return err
	})
	return out, err
}
