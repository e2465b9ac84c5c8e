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

// resealOnUse stores m's secret or address sealed under the primary key, when it was
// sealed with an older one; plain is what was just opened.
func (r *rules) resealOnUse(ctx context.Context, tx Tx, m Method, plain []byte) error {
	secret, dest := m.SecretEnc, m.DestEnc
	var stale bool
	if m.Kind.Rules().Address {
		dest, stale = r.sealFresh(dest, plain, secretAAD(m.UserID))
	} else {
		secret, stale = r.sealFresh(secret, plain, secretAAD(m.UserID))
	}
	if !stale {
		return nil
	}
	return tx.ResealMethod(ctx, m.ID, secret, dest)
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
				sealed := m.SecretEnc
				if m.Kind.Rules().Address {
					sealed = m.DestEnc
				}
				plain, err := sealer.Open(sealed, secretAAD(m.UserID))
				if err != nil {
					return fmt.Errorf("open method %d: %w", m.ID, err)
				}
				if err := r.resealOnUse(ctx, tx, m, plain); err != nil {
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
