package channels

import (
	"context"
	"errors"
	"time"

	mfa "github.com/mfad/mfad"
)

// Store is the database the rules run on, declared here where it is used. Each
// implementation (channels/sqlite, channels/postgres) owns its SQL, migrations and
// concurrency control, and passes the conformance suite in channels/storetest.
//
// Every guarantee the rules rely on is one Tx operation whose result says whether it
// won (ClaimStep, SpendBackupCode, SpendCode, AddFailure, TakeSendSlot, MarkVerified,
// ReserveCommand): it holds under concurrent writers by the operation itself, not
// because something else happens to serialise them.
type Store interface {
	// Write runs units in order in one write transaction and commits them together.
	// A unit whose Run returns an error keeps none of its writes (audit records
	// included); the others commit. The result has one entry per unit: nil when its
	// writes committed, the error Run returned, or the transaction's own error when
	// nothing could be committed.
	//
	// Run may be called more than once: a store may roll a whole batch back and run it
	// again without a failed unit. Each call must start from scratch.
	Write(ctx context.Context, units []Unit) []error
	// Read runs fn in a read-only transaction that sees one committed state.
	Read(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
	// RelayNotifications hands queued notifications with an id after after, oldest first
	// and at most limit, to send, and deletes the ones send reports sent. Rows another
	// worker is sending are skipped, so every row goes out once. It returns the last id
	// it looked at (after when none).
	RelayNotifications(ctx context.Context, after int64, limit int, send func([]QueuedNotification) []int64) (int64, error)
	// Writable commits a small write: the readiness probe of a worker.
	Writable(ctx context.Context) error
}

// ErrUnavailable marks a store error that says nothing about the command: the database
// cannot take the transaction now (connection lost, a failover under way, a lock held
// too long by a stuck worker). The command is answered SERVICE_UNAVAILABLE, which a
// client retries (with its Idempotency-Key), never INTERNAL_ERROR.
var ErrUnavailable = errors.New("store unavailable")

// ErrRerun is a store's word that the batch will run again from its start (a write it
// answered from the unit's read did not go as predicted): what a unit answers with it
// is discarded, so it is neither the command's fault nor worth an error in the log.
var ErrRerun = errors.New("the batch runs again")

// Unit is one command's work in a write transaction. UserID names the user whose rows
// it touches ("" for none): a store that runs writers in parallel keeps each user's
// units apart. A unit of no user that must not run beside another of its kind names a
// lock of its own, starting with NUL (no user id can).
type Unit struct {
	UserID string
	// ReadsUser says the unit's first read is Tx.UserAndMethods of its user (a sign-in
	// verification, a removal), after at most ReserveCommand. A store whose statements are round
	// trips may read them for every such unit of a batch at once; a unit that does
	// something else first gets the same answer, only without the saving.
	ReadsUser bool
	Run       func(ctx context.Context, tx Tx) error
}

// Tx is a transaction of a Store: what the rules read and write. In a Read
// transaction only the reads may be used.
type Tx interface {
	// Users. A user the store has never seen reads as the zero user with the id.
	User(ctx context.Context, id string) (User, error)
	EnsureUser(ctx context.Context, id string, now time.Time) error
	// SetSignIn turns MFA sign-in on or off and reports whether it changed.
	SetSignIn(ctx context.Context, id string, on bool, now time.Time) (bool, error)
	// AddFailure counts one failed code check and returns the new count of consecutive
	// failures and the lock in force, read in the same statement.
	AddFailure(ctx context.Context, id string, now time.Time) (failures int, lockedUntil time.Time, err error)
	// LockUntil extends the user's lock to until; a lock never gets shorter.
	LockUntil(ctx context.Context, id string, until, now time.Time) error
	// ResetFailures clears the failure count after a success.
	ResetFailures(ctx context.Context, id string, now time.Time) error
	// ClearLockout clears the failure count and any lock (an administrator's reset).
	ClearLockout(ctx context.Context, id string, now time.Time) error

	// Methods: verified ones unless the name says pending.
	Methods(ctx context.Context, userID string, kind mfa.Kind) ([]Method, error) // kind "" = all; id order
	// UserAndMethods is User and Methods(kind "") read together: a sign-in's state, in
	// one round trip where the store has round trips.
	UserAndMethods(ctx context.Context, userID string) (User, []Method, error)
	PendingMethod(ctx context.Context, userID string, kind mfa.Kind, id *int64, now time.Time) (Method, bool, error)
	MethodByID(ctx context.Context, id int64) (Method, bool, error)
	CountVerified(ctx context.Context, userID string) (map[mfa.Kind]int, error)
	InsertMethod(ctx context.Context, m NewMethod) (int64, error)
	// MarkVerified makes a pending method a verified one with the TOTP step it was
	// verified with (-1 for none), unless the user already has limit verified methods
	// of its kind (limit 0: no limit). It reports whether it did.
	MarkVerified(ctx context.Context, id int64, now time.Time, step int64, limit int) (bool, error)
	// DeletePending discards the user's pending rows of kind and returns them.
	DeletePending(ctx context.Context, userID string, kind mfa.Kind) ([]Method, error)
	DeleteMethod(ctx context.Context, id int64) error
	// ClaimStep records step as the method's last accepted TOTP step, and now as its
	// last use, if step is later than the one recorded, and reports whether it was.
	ClaimStep(ctx context.Context, id, step int64, now time.Time) (bool, error)
	TouchMethod(ctx context.Context, id int64, now time.Time) error
	// ListMethods is the user's verified methods as reads show them (Primary unset), in
	// no particular order: the rules decide the primary and the order.
	ListMethods(ctx context.Context, userID string, kind mfa.Kind) ([]mfa.Method, error)

	// Backup codes, keyed hashes only.
	ReplaceBackupCodes(ctx context.Context, userID string, codes []CodeHash, now time.Time) (replaced int, err error)
	DeleteBackupCodes(ctx context.Context, userID string) (int, error)
	UnusedBackupCodes(ctx context.Context, userID string) ([]BackupCode, error)
	// SpendBackupCode marks an unused code used and reports whether this call did.
	SpendBackupCode(ctx context.Context, id int64, now time.Time) (bool, error)
	BackupCodeCounts(ctx context.Context, userID string) (total, remaining int, err error)

	// One-time codes sent over SMS or e-mail.
	PutCode(ctx context.Context, c PendingCode) error
	OutstandingCodes(ctx context.Context, userID, purpose string, kind mfa.Kind, now time.Time) ([]OutstandingCode, error)
	// SpendCode deletes the method's outstanding code if its hash is sum, and reports
	// whether this call did.
	SpendCode(ctx context.Context, methodID int64, sum []byte) (bool, error)
	// TakeSendSlot records a code sent to the user unless limit codes were sent in the
	// window before now; refused, it says when a slot frees up.
	TakeSendSlot(ctx context.Context, userID string, now time.Time, window time.Duration, limit int) (ok bool, retryAt time.Time, err error)

	// ReserveCommand reserves an idempotency key for a command about to run. When the
	// key was used within window, nothing is reserved and the earlier command is
	// returned with found true.
	ReserveCommand(ctx context.Context, userID, key, typ string, requestHash []byte, now time.Time, window time.Duration) (StoredCommand, bool, error)
	// SaveReply stores the sealed reply of a reserved key.
	SaveReply(ctx context.Context, userID, key string, sealed []byte) error

	// WebAuthn (webauthn.go). A credential is a method of kind webauthn with a
	// credential row beside it.
	//
	// WebAuthnHandle returns the user's WebAuthn user handle, storing candidate as it
	// (and creating the user) when they have none yet: callers at once all get the
	// handle stored first.
	WebAuthnHandle(ctx context.Context, userID string, candidate []byte, now time.Time) ([]byte, error)
	// PutChallenge stores a ceremony's sealed session and keeps at most keep unexpired
	// or expired challenges of the user and purpose, the newest.
	PutChallenge(ctx context.Context, ch Challenge, keep int) error
	// TakeChallenge deletes the user's challenge id of purpose if it has not expired at
	// now, and returns its sealed session. Taking is using: of two takes at once, one
	// gets it.
	TakeChallenge(ctx context.Context, userID, id, purpose string, now time.Time) (sealed []byte, ok bool, err error)
	// DeleteChallenges discards every challenge of the user and returns how many.
	DeleteChallenges(ctx context.Context, userID string) (int, error)
	// AddCredential records the credential of method methodID unless a credential with
	// its credential id is registered already, to anyone, and reports whether it did.
	AddCredential(ctx context.Context, methodID int64, c WebAuthnCredential) (bool, error)
	// Credentials are the user's verified WebAuthn credentials, in id order.
	Credentials(ctx context.Context, userID string) ([]WebAuthnCredential, error)
	// AdvanceSignCount records an accepted assertion's sign count and backup state,
	// only if count is above the stored count or both are zero (an authenticator
	// without a counter), and only for a credential not flagged. It reports whether it
	// did: of two assertions with one count, one wins.
	AdvanceSignCount(ctx context.Context, methodID int64, count uint32, backupState bool) (bool, error)
	// FlagCredential marks a credential whose sign counter went backwards, and reports
	// whether this call did (false: it was flagged already).
	FlagCredential(ctx context.Context, methodID int64, now time.Time) (bool, error)

	// QueueNotification adds a message for the gateway to the notification outbox.
	QueueNotification(ctx context.Context, n QueuedNotification) error

	// Append records an event in the audit log. The store assigns its seq and chain
	// link when the transaction commits, so a unit that fails leaves no record.
	Append(ctx context.Context, ev mfa.Event) error
	QueryAudit(ctx context.Context, q mfa.AuditQuery) (mfa.AuditPage, error)

	// Dashboard reads.
	EventCounts(ctx context.Context, from, to time.Time) (map[string]int, error)
	Adoption(ctx context.Context) (mfa.Adoption, error)
	Lockouts(ctx context.Context, now time.Time, maxFailures, limit int) (mfa.Lockouts, error) // locked at now, or at maxFailures failures
	OutboxBacklog(ctx context.Context) (mfa.OutboxBacklog, error)

	// Key rotation: how many records each sealing key still seals or hashes, and the
	// methods whose secret or address is sealed with another key than primary (after
	// the id after, at most limit), to seal again.
	KeyUsage(ctx context.Context) ([]KeyUse, error)
	StaleMethods(ctx context.Context, primary string, after int64, limit int) ([]Method, error)
	ResealMethod(ctx context.Context, id int64, secretEnc, destEnc []byte) error

	// Facts about the store itself (the key canary).
	Meta(ctx context.Context, name string) ([]byte, bool, error)
	SetMeta(ctx context.Context, name string, value []byte) error

	// Sweep deletes, at most limit rows of each kind: idempotent replies created before
	// repliesBefore, pending methods, one-time codes and WebAuthn challenges expired at
	// now, and send-limit records older than sendsBefore.
	Sweep(ctx context.Context, now, repliesBefore, sendsBefore time.Time, limit int) error
}

// User is a user's MFA state.
type User struct {
	ID             string
	SignInEnabled  bool
	FailedAttempts int       // consecutive failed code checks
	LockedUntil    time.Time // zero when never locked
}

// lockedUntil is the end of the user's lock, or the zero time when not locked at now.
func (u User) lockedUntil(now time.Time) time.Time {
	if !u.LockedUntil.After(now) {
		return time.Time{}
	}
	return u.LockedUntil
}

// Method is a stored method row, pending or verified. Secrets and addresses are sealed.
type Method struct {
	ID           int64
	UserID       string
	Kind         mfa.Kind
	Label        string
	SecretEnc    []byte // TOTP secret
	DestEnc      []byte // phone number or e-mail address
	Hint         string // masked address
	Verified     bool
	EntryPoint   string
	LastUsedStep int64
	Algorithm    string // TOTP profile
	Digits       int
	Period       int
	CreatedAt    time.Time
}

// NewMethod is a pending method to insert.
type NewMethod struct {
	UserID     string
	Kind       mfa.Kind
	Label      string
	SecretEnc  []byte
	DestEnc    []byte
	Hint       string
	EntryPoint string
	Algorithm  string // TOTP profile; empty for other kinds
	Digits     int
	Period     int
	CreatedAt  time.Time
	ExpiresAt  time.Time
}

// CodeHash is a keyed hash of a code and the id of its key.
type CodeHash struct {
	KeyID string
	Sum   []byte
}

// BackupCode is an unused backup code's hash.
type BackupCode struct {
	ID int64
	CodeHash
}

// PendingCode is a one-time code to store for a method, replacing its outstanding one.
type PendingCode struct {
	MethodID  int64
	Purpose   string // codeRegister or codeSignIn
	Hash      CodeHash
	ExpiresAt time.Time
	CreatedAt time.Time
}

// OutstandingCode is an unexpired one-time code with its method.
type OutstandingCode struct {
	Method  Method
	Purpose string
	Hash    CodeHash
}

// StoredCommand is an earlier command with the same idempotency key.
type StoredCommand struct {
	Type        string
	RequestHash []byte
	ReplySealed []byte
}

// KeyUse is how many records of one kind a sealing key seals (or keys the hash of).
type KeyUse struct {
	Record string // one of the Record* names
	KeyID  string
	Count  int
}

// What a key seals or keys, as KeyUse names it.
const (
	RecordSecret       = "TOTP secret"
	RecordAddress      = "phone or e-mail address"
	RecordBackupCode   = "backup code"
	RecordOneTimeCode  = "one-time code"
	RecordReply        = "idempotent reply"
	RecordNotification = "queued notification"
	RecordCanary       = "key canary"
	RecordChallenge    = "WebAuthn challenge" // expires in minutes, like a one-time code
)

// QueuedNotification is a row of the notification outbox.
type QueuedNotification struct {
	ID         int64 // assigned by the store
	MsgID      string
	Subject    string
	BodySealed []byte
	CreatedAt  time.Time
}

// Purposes of a WebAuthn challenge.
const (
	challengeRegister = "register"
	challengeLogin    = "login"
)

// Challenge is an outstanding WebAuthn ceremony.
type Challenge struct {
	ID            string // a UUID, the challenge_id clients send back
	UserID        string
	Purpose       string // challengeRegister or challengeLogin
	SessionSealed []byte
	ExpiresAt     time.Time
	CreatedAt     time.Time
}

// WebAuthnCredential is a registered WebAuthn credential. The method fields (Label
// through LastUsedAt) are read from its method; AddCredential ignores them.
type WebAuthnCredential struct {
	MethodID   int64
	Label      string
	EntryPoint string
	CreatedAt  time.Time
	LastUsedAt *time.Time

	CredentialID      []byte
	PublicKey         []byte // COSE_Key
	SignCount         uint32
	AAGUID            []byte
	UserVerified      bool // at registration
	BackupEligible    bool
	BackupState       bool
	AttestationFormat string
	Transports        []string
	Attachment        string
	FlaggedAt         time.Time // zero unless the sign counter went backwards
}
