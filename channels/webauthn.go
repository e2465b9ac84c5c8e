package channels

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	mfa "github.com/mfad/mfad"
)

// WebAuthn (W3C Web Authentication level 3) with security keys and passkeys: the
// phishing-resistant factor (NIST SP 800-63B rev. 4). The browser's JSON reaches the
// worker as it is; go-webauthn verifies it here. A ceremony is two commands: options
// store a challenge (the library's session, sealed) and answer its id; the answer
// takes the challenge in the transaction that stores the credential or accepts the
// sign-in, so each challenge is used at most once, even by two workers at once.

// challengeTTL is how long a WebAuthn challenge waits for its answer, by mfad's clock;
// the browser is told the same as its timeout.
const challengeTTL = 5 * time.Minute

// challengesKept is how many outstanding challenges of one purpose a user may have:
// enough for a few tabs, not a table a token can fill.
const challengesKept = 5

// WebAuthnPolicy is the relying party and what it accepts.
type WebAuthnPolicy struct {
	RPID   string // the relying party id, a domain [localhost]
	RPName string // shown by the browser [mfad]
	// Origins the browser may answer from: web origins (scheme, host and port, e.g.
	// https://id.example.com) and Android app origins (android:apk-key-hash:…).
	// [http://localhost:8080]
	Origins []string
	// RequireUserVerification refuses an authenticator that did not verify the user
	// (PIN, biometrics); otherwise verification is preferred and reported.
	RequireUserVerification bool
	// RefuseSynced refuses backup-eligible credentials (synced passkeys): device-bound
	// keys only, an AAL3-style policy.
	RefuseSynced bool
	// AAGUIDs, when set, are the only authenticator models a credential may be
	// registered with.
	AAGUIDs []uuid.UUID
	// Attestation is the conveyance asked of authenticators: none, indirect or direct.
	Attestation string
	// MaxCredentials is how many credentials a user may have [10].
	MaxCredentials int
}

func (p *WebAuthnPolicy) setDefaults() {
	if p.RPID == "" {
		p.RPID = "localhost"
	}
	if p.RPName == "" {
		p.RPName = "mfad"
	}
	if len(p.Origins) == 0 {
		p.Origins = []string{"http://localhost:8080"}
	}
	if p.Attestation == "" {
		p.Attestation = string(protocol.PreferNoAttestation)
	}
	if p.MaxCredentials <= 0 {
		p.MaxCredentials = 10
	}
}

// relyingParty builds the library's relying party from p.
func (p WebAuthnPolicy) relyingParty() (*webauthn.WebAuthn, error) {
	switch protocol.ConveyancePreference(p.Attestation) {
	case protocol.PreferNoAttestation, protocol.PreferIndirectAttestation, protocol.PreferDirectAttestation:
	default:
		return nil, fmt.Errorf("webauthn attestation %q: want none, indirect or direct", p.Attestation)
	}
	cfg := &webauthn.Config{
		RPID:                  p.RPID,
		RPDisplayName:         p.RPName,
		AttestationPreference: protocol.ConveyancePreference(p.Attestation),
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementPreferred,
			UserVerification: p.userVerification(),
		},
		// The browser's timeout is the challenge's life; mfad's own clock enforces it
		// (the library's enforcement would read the wall clock, not the worker's).
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: challengeTTL, TimeoutUVD: challengeTTL},
			Registration: webauthn.TimeoutConfig{Timeout: challengeTTL, TimeoutUVD: challengeTTL},
		},
	}
	for _, o := range p.Origins {
		if protocol.IsOpaqueOrigin(o) {
			cfg.RPOpaqueOrigins = append(cfg.RPOpaqueOrigins, o)
		} else {
			cfg.RPOrigins = append(cfg.RPOrigins, o)
		}
	}
	wa, err := webauthn.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("webauthn relying party %s: %w", p.RPID, err)
	}
	return wa, nil
}

func (p WebAuthnPolicy) userVerification() protocol.UserVerificationRequirement {
	if p.RequireUserVerification {
		return protocol.VerificationRequired
	}
	return protocol.VerificationPreferred
}

// refusesSynced says whether the policy refuses a credential that is backup eligible
// (a synced passkey), at registration and at sign-in alike.
func (p WebAuthnPolicy) refusesSynced(backupEligible bool) bool {
	return p.RefuseSynced && backupEligible
}

// allows reports whether the policy accepts a new credential: its refusal, or nil.
func (p WebAuthnPolicy) allows(c *webauthn.Credential) error {
	if p.refusesSynced(c.Flags.BackupEligible) {
		return mfa.ErrCredentialNotAllowed
	}
	if len(p.AAGUIDs) > 0 {
		// Strict, unlike the library's filter: a zero AAGUID (an authenticator that
		// does not say its model) is not on any list.
		id, err := uuid.FromBytes(c.Authenticator.AAGUID)
		if err != nil || !slices.Contains(p.AAGUIDs, id) {
			return mfa.ErrCredentialNotAllowed
		}
	}
	return nil
}

// ceremony is what a challenge holds: the library's session, and for a registration
// the name the user gave the credential.
type ceremony struct {
	Session    webauthn.SessionData `json:"session"`
	DeviceName string               `json:"device_name,omitempty"`
}

// waUser is a user as the library sees them.
type waUser struct {
	handle []byte
	name   string
	creds  []webauthn.Credential
}

func (u waUser) WebAuthnID() []byte                         { return u.handle }
func (u waUser) WebAuthnName() string                       { return u.name }
func (u waUser) WebAuthnDisplayName() string                { return u.name }
func (u waUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// libraryCredential is a stored credential as the library checks an assertion with it.
func libraryCredential(c WebAuthnCredential) webauthn.Credential {
	transports := make([]protocol.AuthenticatorTransport, len(c.Transports))
	for i, t := range c.Transports {
		transports[i] = protocol.AuthenticatorTransport(t)
	}
	return webauthn.Credential{
		ID:                c.CredentialID,
		PublicKey:         c.PublicKey,
		AttestationFormat: c.AttestationFormat,
		Transport:         transports,
		Flags:             webauthn.CredentialFlags{UserVerified: c.UserVerified, BackupEligible: c.BackupEligible, BackupState: c.BackupState},
		Authenticator:     webauthn.Authenticator{AAGUID: c.AAGUID, SignCount: c.SignCount},
	}
}

// aaguidString is the AAGUID as a UUID string (the zero UUID when absent or malformed).
func aaguidString(b []byte) string {
	id, err := uuid.FromBytes(b)
	if err != nil {
		return uuid.Nil.String()
	}
	return id.String()
}

// credentialView is a stored credential as reads show it.
func credentialView(c WebAuthnCredential) mfa.WebAuthnCredential {
	return mfa.WebAuthnCredential{ID: c.MethodID, Name: c.Label, AAGUID: aaguidString(c.AAGUID),
		UserVerified: c.UserVerified, BackupEligible: c.BackupEligible, BackupState: c.BackupState,
		Flagged: !c.FlaggedAt.IsZero(), Transports: c.Transports, CreatedAt: c.CreatedAt, LastUsedAt: c.LastUsedAt}
}

// method is the method row of a stored credential, for events and the cascade.
func (c WebAuthnCredential) method(userID string) Method {
	return Method{ID: c.MethodID, UserID: userID, Kind: mfa.KindWebAuthn, Label: c.Label, Verified: true, EntryPoint: c.EntryPoint}
}

// challengeAAD binds a sealed session to its challenge, user and purpose: a session
// copied to another row does not open.
func challengeAAD(id, userID, purpose string) []byte {
	return []byte("webauthn_challenges\x00" + id + "\x00" + userID + "\x00" + purpose)
}

// userHandle is the user's WebAuthn user handle, made on first use.
func (r *rules) userHandle(ctx context.Context, tx Tx, c *call) ([]byte, error) {
	candidate := make([]byte, 32)
	_, _ = rand.Read(candidate) // crypto/rand.Read never fails (Go 1.24+)
	return tx.WebAuthnHandle(ctx, c.cmd.UserID, candidate, c.now)
}

// putChallenge seals and stores a ceremony and returns what the client gets.
func (r *rules) putChallenge(ctx context.Context, tx Tx, c *call, purpose string, cer ceremony, options any) (mfa.WebAuthnOptions, error) {
	id := mfa.NewID()
	plain, err := json.Marshal(cer)
	if err != nil {
		return mfa.WebAuthnOptions{}, fmt.Errorf("encode webauthn session: %w", err)
	}
	public, err := json.Marshal(options)
	if err != nil {
		return mfa.WebAuthnOptions{}, fmt.Errorf("encode webauthn options: %w", err)
	}
	err = tx.PutChallenge(ctx, Challenge{ID: id, UserID: c.cmd.UserID, Purpose: purpose,
		SessionSealed: r.sealer.Seal(plain, challengeAAD(id, c.cmd.UserID, purpose)),
		ExpiresAt:     c.now.Add(challengeTTL), CreatedAt: c.now}, challengesKept)
	if err != nil {
		return mfa.WebAuthnOptions{}, err
	}
	return mfa.WebAuthnOptions{ChallengeID: id, ExpiresIn: int(challengeTTL / time.Second), PublicKey: public}, nil
}

// takeChallenge consumes the user's challenge id of purpose; found false when it is
// unknown, used, expired or someone else's.
func (r *rules) takeChallenge(ctx context.Context, tx Tx, c *call, id, purpose string) (ceremony, bool, error) {
	sealed, ok, err := tx.TakeChallenge(ctx, c.cmd.UserID, id, purpose, c.now)
	if err != nil || !ok {
		return ceremony{}, false, err
	}
	plain, err := r.sealer.Open(sealed, challengeAAD(id, c.cmd.UserID, purpose))
	if err != nil {
		return ceremony{}, false, fmt.Errorf("open webauthn challenge %s: %w", id, err)
	}
	var cer ceremony
	if err := json.Unmarshal(plain, &cer); err != nil {
		return ceremony{}, false, fmt.Errorf("decode webauthn challenge %s: %w", id, err)
	}
	return cer, true, nil
}

// webauthnRegisterOptions starts registering a security key or passkey: the creation
// options for navigator.credentials.create, excluding the user's credentials so an
// authenticator is not registered twice.
func (r *rules) webauthnRegisterOptions(ctx context.Context, tx Tx, c *call) (any, error) {
	var p mfa.WebAuthnRegisterParams
	if err := c.params(&p); err != nil {
		return nil, err
	}
	creds, err := tx.Credentials(ctx, c.cmd.UserID)
	if err != nil {
		return nil, err
	}
	if len(creds) >= r.cfg.WebAuthn.MaxCredentials {
		return nil, mfa.ErrCredentialLimit
	}
	handle, err := r.userHandle(ctx, tx, c) // creates the user if it is new
	if err != nil {
		return nil, err
	}
	exclude := make([]protocol.CredentialDescriptor, len(creds))
	for i, cr := range creds {
		lc := libraryCredential(cr)
		exclude[i] = lc.Descriptor()
	}
	creation, session, err := r.wa.BeginRegistration(waUser{handle: handle, name: c.cmd.UserID},
		webauthn.WithExclusions(exclude))
	if err != nil {
		return nil, fmt.Errorf("begin webauthn registration: %w", err)
	}
	return r.putChallenge(ctx, tx, c, challengeRegister, ceremony{Session: *session, DeviceName: p.DeviceName}, creation.Response)
}

// webauthnRegisterVerify finishes a registration: the browser's credential against the
// challenge, then the policy. Success makes it a method, turns sign-in on and, for the
// user's first strong factor, issues backup codes. Refusals here do not count toward
// the lockout: a registration guesses nothing (the caller made the key), and the
// lockout guards sign-in. A locked user cannot register, though, or a lock could be
// sidestepped by enrolling a key of one's own.
func (r *rules) webauthnRegisterVerify(ctx context.Context, tx Tx, c *call) (any, error) {
	var p mfa.WebAuthnRegisterVerifyParams
	if err := c.params(&p); err != nil {
		return nil, err
	}
	userID := c.cmd.UserID
	u, err := tx.User(ctx, userID)
	if err != nil {
		return nil, err
	}
	if err := r.guard(ctx, tx, c, u, mfa.VerifiedByWebAuthn); err != nil {
		return nil, err
	}
	cer, ok, err := r.takeChallenge(ctx, tx, c, p.ChallengeID, challengeRegister)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, mfa.ErrInvalidChallenge
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(p.Credential)
	if err != nil {
		r.refused(c, "registration", err)
		return nil, mfa.ErrInvalidCredential
	}
	cred, err := r.wa.CreateCredential(waUser{handle: cer.Session.UserID, name: userID}, cer.Session, parsed)
	if err != nil {
		r.refused(c, "registration", err)
		return nil, mfa.ErrInvalidCredential
	}
	if err := usableKey(cred.PublicKey); err != nil {
		r.refused(c, "registration", err)
		return nil, mfa.ErrInvalidCredential
	}
	if err := r.cfg.WebAuthn.allows(cred); err != nil {
		return nil, err
	}
	counts, err := tx.CountVerified(ctx, userID)
	if err != nil {
		return nil, err
	}
	stored := WebAuthnCredential{
		CredentialID: cred.ID, PublicKey: cred.PublicKey, SignCount: cred.Authenticator.SignCount,
		AAGUID: cred.Authenticator.AAGUID, UserVerified: cred.Flags.UserVerified,
		BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState,
		AttestationFormat: cred.AttestationFormat, Attachment: string(cred.Authenticator.Attachment),
		Label: cer.DeviceName, CreatedAt: c.now,
	}
	for _, t := range cred.Transport {
		stored.Transports = append(stored.Transports, string(t))
	}
	// A pending method, its credential, then verified under the limit: each step's
	// refusal undoes the row, because an outcome keeps the command's other writes.
	id, err := tx.InsertMethod(ctx, NewMethod{UserID: userID, Kind: mfa.KindWebAuthn, Label: cer.DeviceName,
		EntryPoint: c.cmd.EntryPoint, CreatedAt: c.now, ExpiresAt: c.now.Add(pendingTTL)})
	if err != nil {
		return nil, err
	}
	stored.MethodID = id
	added, err := tx.AddCredential(ctx, id, stored)
	if err != nil {
		return nil, err
	}
	if !added {
		return nil, undo(tx.DeleteMethod(ctx, id), mfa.ErrCredentialExists)
	}
	verified, err := tx.MarkVerified(ctx, id, c.now, -1, r.cfg.WebAuthn.MaxCredentials)
	if err != nil {
		return nil, err
	}
	if !verified {
		return nil, undo(tx.DeleteMethod(ctx, id), mfa.ErrCredentialLimit)
	}
	m := stored.method(userID)
	if err := r.added(ctx, tx, c, m, credentialDetail(stored)); err != nil {
		return nil, err
	}
	out := mfa.WebAuthnRegistered{WebAuthnCredential: credentialView(stored)}
	if strongCount(counts) == 0 {
		if out.BackupCodes, err = r.issueBackupCodes(ctx, tx, c); err != nil {
			return nil, err
		}
	}
	return out, r.setSignIn(ctx, tx, c, true, "method_verified")
}

// undo answers outcome once the undoing write worked, and the write's fault otherwise
// (a fault rolls the whole command back).
func undo(err error, outcome *mfa.Error) error {
	if err != nil {
		return err
	}
	return outcome
}

// credentialDetail is what events say of a credential: its model and flags, never a
// key or the credential id.
func credentialDetail(c WebAuthnCredential) map[string]any {
	d := map[string]any{
		"aaguid":          aaguidString(c.AAGUID),
		"user_verified":   c.UserVerified,
		"backup_eligible": c.BackupEligible,
		"backup_state":    c.BackupState,
	}
	if c.AttestationFormat != "" {
		d["attestation_format"] = c.AttestationFormat
	}
	return d
}

// refused logs why the library refused a browser's answer. The reply says only
// INVALID_CREDENTIAL; an operator debugging an origin or RP ID needs the reason.
func (r *rules) refused(c *call, ceremony string, err error) {
	detail := err.Error()
	var pe *protocol.Error
	if errors.As(err, &pe) {
		detail = pe.Details
		if pe.DevInfo != "" {
			detail += ": " + pe.DevInfo
		}
	}
	r.log.Info("webauthn "+ceremony+" refused", "user_id", c.cmd.UserID, "command_id", c.cmd.ID,
		"request_id", c.cmd.RequestID, "reason", detail)
}

// webauthnLoginOptions is a sign-in challenge for the user's credentials, answered
// through verify. While the user is locked none is issued.
func (r *rules) webauthnLoginOptions(ctx context.Context, tx Tx, c *call) (any, error) {
	u, err := tx.User(ctx, c.cmd.UserID)
	if err != nil {
		return nil, err
	}
	if !u.SignInEnabled {
		return nil, mfa.ErrMFANotEnabled
	}
	if err := r.guard(ctx, tx, c, u, mfa.VerifiedByWebAuthn); err != nil {
		return nil, err
	}
	creds, err := tx.Credentials(ctx, c.cmd.UserID)
	if err != nil {
		return nil, err
	}
	var usable []webauthn.Credential
	for _, cr := range creds {
		if cr.FlaggedAt.IsZero() {
			usable = append(usable, libraryCredential(cr))
		}
	}
	if len(usable) == 0 {
		return nil, mfa.ErrChannelNotFound
	}
	handle, err := r.userHandle(ctx, tx, c)
	if err != nil {
		return nil, err
	}
	assertion, session, err := r.wa.BeginLogin(waUser{handle: handle, name: c.cmd.UserID, creds: usable})
	if err != nil {
		return nil, fmt.Errorf("begin webauthn sign-in: %w", err)
	}
	return r.putChallenge(ctx, tx, c, challengeLogin, ceremony{Session: *session}, assertion.Response)
}

// verifyWebAuthn is a sign-in with an assertion. Every refusal of an answer counts
// toward the lockout like a wrong code: an unknown, used or expired challenge, an
// answer that does not verify (wrong origin or RP, bad signature, user verification
// required and absent), someone else's credential, a flagged one, and a sign counter
// that did not increase, which also flags the credential.
func (r *rules) verifyWebAuthn(ctx context.Context, tx Tx, c *call, u User, p mfa.VerifyParams) (any, error) {
	if err := r.guard(ctx, tx, c, u, mfa.VerifiedByWebAuthn); err != nil {
		return nil, err
	}
	failed := func(reason string, id int64, outcome error) error {
		detail := map[string]any{"method": mfa.VerifiedByWebAuthn, "reason": reason}
		if id != 0 {
			detail["device_id"] = id
		}
		if err := r.fail(ctx, tx, c, u, false, detail); !errors.Is(err, mfa.ErrInvalidCode) {
			return err
		}
		return outcome
	}
	cer, ok, err := r.takeChallenge(ctx, tx, c, p.ChallengeID, challengeLogin)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, failed("challenge", 0, mfa.ErrInvalidChallenge)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(p.WebAuthn)
	if err != nil {
		r.refused(c, "sign-in", err)
		return nil, failed("malformed", 0, mfa.ErrInvalidCredential)
	}
	creds, err := tx.Credentials(ctx, c.cmd.UserID)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(creds, func(cr WebAuthnCredential) bool { return string(cr.CredentialID) == string(parsed.RawID) })
	if i < 0 {
		return nil, failed("unknown_credential", 0, mfa.ErrInvalidCredential)
	}
	cred := creds[i]
	if !cred.FlaggedAt.IsZero() {
		return nil, failed("flagged", cred.MethodID, mfa.ErrInvalidCredential)
	}
	all := make([]webauthn.Credential, len(creds))
	for j, cr := range creds {
		all[j] = libraryCredential(cr)
	}
	// The challenge was issued earlier, under the policy and the credentials of then.
	// User verification is the policy of now: a restart that requires it must not
	// honour a challenge that only preferred it. And a credential removed since is no
	// reason to refuse (and count) an answer signed by another one the user still has.
	cer.Session.UserVerification = r.cfg.WebAuthn.userVerification()
	cer.Session.AllowedCredentialIDs = slices.DeleteFunc(cer.Session.AllowedCredentialIDs, func(id []byte) bool {
		return !slices.ContainsFunc(creds, func(cr WebAuthnCredential) bool { return string(cr.CredentialID) == string(id) })
	})
	if _, err := r.wa.ValidateLogin(waUser{handle: cer.Session.UserID, name: c.cmd.UserID, creds: all}, cer.Session, parsed); err != nil {
		r.refused(c, "sign-in", err)
		return nil, failed("assertion", cred.MethodID, mfa.ErrInvalidCredential)
	}
	flags := parsed.Response.AuthenticatorData.Flags
	if r.cfg.WebAuthn.refusesSynced(flags.HasBackupEligible()) {
		// A synced passkey registered before the policy: genuine, so not a failed
		// guess, but no longer enough.
		return nil, mfa.ErrCredentialNotAllowed
	}
	count := parsed.Response.AuthenticatorData.Counter
	advanced, err := tx.AdvanceSignCount(ctx, cred.MethodID, count, flags.HasBackupState())
	if err != nil {
		return nil, err
	}
	if !advanced {
		return nil, r.counterRegressed(ctx, tx, c, cred, count, failed)
	}
	uv := flags.HasUserVerified()
	detail := credentialDetail(cred)
	detail["user_verified"] = uv
	detail["backup_state"] = flags.HasBackupState()
	m := cred.method(c.cmd.UserID)
	v, err := r.verified(ctx, tx, c, u, mfa.VerifiedByWebAuthn, &m, detail)
	v.UserVerified = &uv
	return v, err
}

// counterRegressed refuses an assertion whose sign count is not above the stored one:
// two copies of the key exist (WebAuthn §6.1.1), or the authenticator is broken.
// Either way the credential is flagged and refused from then on (as ZITADEL and
// Authelia do), and the user is told.
func (r *rules) counterRegressed(ctx context.Context, tx Tx, c *call, cred WebAuthnCredential, count uint32,
	failed func(string, int64, error) error) error {
	flagged, err := tx.FlagCredential(ctx, cred.MethodID, c.now)
	if err != nil {
		return err
	}
	if flagged {
		detail := credentialDetail(cred)
		detail["stored_sign_count"] = cred.SignCount
		detail["presented_sign_count"] = count
		m := cred.method(c.cmd.UserID)
		if err := r.emit(ctx, tx, c, mfa.EventWebAuthnFlagged, m.object(), detail); err != nil {
			return err
		}
		if err := r.securityNotice(ctx, tx, c, mfa.TemplateCredentialFlagged); err != nil {
			return err
		}
	}
	return failed("sign_count", cred.MethodID, mfa.ErrInvalidCredential)
}

// webauthnList is the credential list, newest first.
func (r *rules) webauthnList(ctx context.Context, tx Tx, c *call) (any, error) {
	creds, err := tx.Credentials(ctx, c.cmd.UserID)
	if err != nil {
		return nil, err
	}
	out := mfa.WebAuthnCredentials{Credentials: make([]mfa.WebAuthnCredential, 0, len(creds))}
	for i := len(creds) - 1; i >= 0; i-- {
		out.Credentials = append(out.Credentials, credentialView(creds[i]))
	}
	return out, nil
}

// webauthnRemove removes one credential of the user. Absent and someone else's are
// one answer, CREDENTIAL_NOT_FOUND: existence is not leaked.
func (r *rules) webauthnRemove(ctx context.Context, tx Tx, c *call) (any, error) {
	return r.removeOne(ctx, tx, c, mfa.KindWebAuthn, mfa.ErrCredentialNotFound)
}

// ec2Kind is an EC2 key's algorithm and curve; ec2Curves the pairs that verify (RFC 9053
// §2.1: each ECDSA algorithm names its curve).
type ec2Kind struct {
	alg   webauthncose.COSEAlgorithmIdentifier
	curve webauthncose.COSEEllipticCurve
}

var ec2Curves = map[ec2Kind]ecdh.Curve{
	{webauthncose.AlgES256, webauthncose.P256}: ecdh.P256(),
	{webauthncose.AlgES384, webauthncose.P384}: ecdh.P384(),
	{webauthncose.AlgES512, webauthncose.P521}: ecdh.P521(),
}

// rsaAlgorithms are the algorithms an RSA key may be for.
var rsaAlgorithms = []webauthncose.COSEAlgorithmIdentifier{
	webauthncose.AlgRS256, webauthncose.AlgRS384, webauthncose.AlgRS512,
	webauthncose.AlgPS256, webauthncose.AlgPS384, webauthncose.AlgPS512,
}

// usableKey refuses a credential public key that could never verify a signature. With
// attestation "none" nothing signs with the key at registration, so without this a
// broken client could enrol a strong factor that no sign-in can use: a point off its
// curve, a curve that is not the algorithm's, a short RSA modulus, a malformed Ed25519
// key.
func usableKey(cose []byte) error {
	k, err := webauthncose.ParsePublicKey(cose)
	if err != nil {
		return fmt.Errorf("public key: %w", err)
	}
	switch k := k.(type) {
	case webauthncose.EC2PublicKeyData:
		curve, ok := ec2Curves[ec2Kind{webauthncose.COSEAlgorithmIdentifier(k.Algorithm), webauthncose.COSEEllipticCurve(k.Curve)}]
		if !ok {
			return fmt.Errorf("public key: EC2 algorithm %d on curve %d", k.Algorithm, k.Curve)
		}
		point := append(append([]byte{4}, k.XCoord...), k.YCoord...)
		if _, err := curve.NewPublicKey(point); err != nil { // checks the length and the curve
			return fmt.Errorf("public key: %w", err)
		}
	case webauthncose.RSAPublicKeyData:
		if !slices.Contains(rsaAlgorithms, webauthncose.COSEAlgorithmIdentifier(k.Algorithm)) {
			return fmt.Errorf("public key: RSA key for algorithm %d", k.Algorithm)
		}
		if n := new(big.Int).SetBytes(k.Modulus).BitLen(); n < 2048 {
			return fmt.Errorf("public key: RSA modulus of %d bits", n)
		}
		if e := new(big.Int).SetBytes(k.Exponent); e.Bit(0) == 0 || e.Cmp(big.NewInt(3)) < 0 {
			return fmt.Errorf("public key: RSA exponent %s", e)
		}
	case webauthncose.OKPPublicKeyData:
		if webauthncose.COSEEllipticCurve(k.Curve) != webauthncose.Ed25519 || len(k.XCoord) != ed25519.PublicKeySize {
			return fmt.Errorf("public key: OKP curve %d, %d bytes", k.Curve, len(k.XCoord))
		}
	default:
		return fmt.Errorf("public key: unsupported type %T", k)
	}
	return nil
}
