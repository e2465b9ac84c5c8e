package channels

import (
	"context"
	"fmt"
	"strconv"

	"github.com/pquerna/otp"

	mfa "github.com/mfad/mfad"
)

// object is how an event names a method: never a secret, only the label or the masked
// address.
func (m Method) object() mfa.EventObject {
	name := m.Label
	if m.Kind.Rules().Address {
		name = m.Hint
	}
	return mfa.EventObject{Type: m.Kind.Rules().Object, ID: strconv.FormatInt(m.ID, 10), Name: name}
}

// totp is the RFC 6238 profile m was created with.
func (m Method) totp() (totpParams, error) {
	a, err := ParseAlgorithm(m.Algorithm)
	if err != nil {
		return totpParams{}, fmt.Errorf("method %d: %w", m.ID, err)
	}
	return totpParams{Algorithm: a, Digits: otp.Digits(m.Digits), Period: uint(m.Period)}, nil
}

// secretAAD binds a sealed secret or address to its owner.
func secretAAD(userID string) []byte { return []byte("methods\x00" + userID) }

// secret opens the TOTP secret of m, sealing it again under the primary key when an
// older key sealed it.
func (r *rules) secret(ctx context.Context, tx Tx, m Method) (string, error) {
	plain, err := r.openMethod(ctx, tx, m)
	return string(plain), err
}

// voluntary reports whether the user may remove a method of kind created under
// entryPoint: every method is, unless MFAD_MANDATORY_CHANNELS names the pair.
func (r *rules) voluntary(entryPoint string, kind mfa.Kind) bool {
	return !r.cfg.Mandatory[entryPoint][kind]
}

// strongCount is how many of counts' methods are of a strong kind: backup codes exist
// while it is above zero.
func strongCount(counts map[mfa.Kind]int) int {
	n := 0
	for k, c := range counts {
		if k.Rules().Strong {
			n += c
		}
	}
	return n
}
