package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels"
)

// Generated key files in the data dir. They make the no-configuration start work; a
// production deployment sets MFAD_SECRET_KEY and a real token issuer instead.
const (
	devJWTSecretFile = "jwt-dev.secret"
	sealingKeyFile   = "secret.key"
	auditKeyFile     = "audit.key"
)

// loadOrCreateKey returns the base64 key in dataDir/name, creating a random 32-byte one
// (mode 0600) on first use.
func loadOrCreateKey(dataDir, name string) ([]byte, error) {
	path := filepath.Join(dataDir, name)
	if key, err := readKey(path); !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go 1.24+)
	created, err := createOnce(dataDir, name, []byte(base64.StdEncoding.EncodeToString(key)+"\n"))
	if err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	if !created { // another process was first
		return readKey(path)
	}
	return key, nil
}

// createOnce writes content to dataDir/name (mode 0600) unless the file exists, and
// reports whether it did. The content goes to a temporary file first, which is then
// linked into place: link fails if the name exists, so processes starting at once
// agree on one file, and none can read a file another is still writing.
func createOnce(dataDir, name string, content []byte) (bool, error) {
	path := filepath.Join(dataDir, name)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return false, fmt.Errorf("create data dir: %w", err)
	}
	f, err := os.CreateTemp(dataDir, "."+name+".*")
	if err != nil {
		return false, fmt.Errorf("create %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(content)
	if err = errors.Join(err, f.Chmod(0o600), f.Sync(), f.Close()); err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Link(f.Name(), path); errors.Is(err, fs.ErrExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("create %s: %w", path, err)
	}
	return true, nil
}

func readKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("key file %s is not a base64 32-byte key", path)
	}
	return key, nil
}

// jwtSecret is the HS256 secret: MFAD_JWT_SECRET, or the dev secret when no other token
// validation is configured. nil means tokens are checked by JWKS or introspection only.
func (c *Config) jwtSecret() ([]byte, bool, error) {
	if c.JWTSecret != "" {
		return []byte(c.JWTSecret), false, nil
	}
	if c.JWKSURL != "" || c.IntrospectionURL != "" {
		return nil, false, nil
	}
	key, err := loadOrCreateKey(c.DataDir, devJWTSecretFile)
	return key, true, err
}

// registerAuditKey defines --audit-key (serve, and audit verify, which needs the key).
func (c *Config) registerAuditKey(fs *flag.FlagSet) {
	fs.StringVar(&c.AuditKey, "audit-key", "", "base64 32-byte key(s) linking the audit chain, comma-separated, first links; empty = generated key file audit.key in the data dir")
}

// auditChain is the audit chain of MFAD_AUDIT_KEY, or of the key file in the data dir,
// which create makes on first use.
func (c *Config) auditChain(create bool) (*audit.Chain, error) {
	keys, err := decodeKeys("MFAD_AUDIT_KEY", c.AuditKey)
	if err != nil {
		return nil, err
	}
	keys, err = c.keysOrFile(keys, auditKeyFile, create,
		fmt.Sprintf("no audit chain key: set MFAD_AUDIT_KEY (--audit-key) or keep %s in the data dir %s", auditKeyFile, c.DataDir))
	if err != nil {
		return nil, err
	}
	return audit.NewChain(keys...)
}

// sealer is the Sealer of MFAD_SECRET_KEY, or of the key file in the data dir, which
// create makes on first use.
func (c *Config) sealer(create bool) (*channels.Sealer, error) {
	keys, err := c.sealingKeys()
	if err != nil {
		return nil, err
	}
	keys, err = c.keysOrFile(keys, sealingKeyFile, create,
		fmt.Sprintf("no sealing key: set MFAD_SECRET_KEY (--secret-key) or keep %s in the data dir %s", sealingKeyFile, c.DataDir))
	if err != nil {
		return nil, err
	}
	return channels.NewSealer(keys...)
}

// keysOrFile is keys when the configuration lists any, else the one key of the data
// dir's file name (dataDirKey).
func (c *Config) keysOrFile(keys [][]byte, name string, create bool, missing string) ([][]byte, error) {
	if len(keys) > 0 {
		return keys, nil
	}
	key, err := dataDirKey(c.DataDir, name, create, missing)
	if err != nil {
		return nil, err
	}
	return [][]byte{key}, nil
}

// dataDirKey is the key in dataDir/name, which create makes on first use. Without
// create a missing file is the error missing, which says where else the key may come
// from: a command that only reads must not make up a key that opens nothing.
func dataDirKey(dataDir, name string, create bool, missing string) ([]byte, error) {
	if create {
		return loadOrCreateKey(dataDir, name)
	}
	key, err := readKey(filepath.Join(dataDir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errors.New(missing)
	}
	return key, err
}
