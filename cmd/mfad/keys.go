package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Generated key files in the data dir. They make the no-configuration start work; a
// production deployment sets MFAD_SECRET_KEY and a real token issuer instead.
const (
	devJWTSecretFile = "jwt-dev.secret"
	sealingKeyFile   = "secret.key"
)

// loadOrCreateKey returns the base64 key in dataDir/name, creating a random 32-byte one
// (mode 0600) on first use. O_EXCL makes two processes starting at once agree on one key.
func loadOrCreateKey(dataDir, name string) ([]byte, error) {
	path := filepath.Join(dataDir, name)
	if b, err := os.ReadFile(path); err == nil {
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("key file %s is not a base64 32-byte key", path)
		}
		return key, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go 1.24+)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadOrCreateKey(dataDir, name)
	}
	if err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err = errors.Join(err, f.Sync(), f.Close()); err != nil {
		return nil, fmt.Errorf("write key file %s: %w", path, err)
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
