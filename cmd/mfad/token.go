package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// runToken prints a signed HS256 token: for development and tests, with the secret the
// server uses (MFAD_JWT_SECRET, else the dev secret mfad serve generated in the data
// dir).
func runToken(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var (
		cfg     Config
		sub     string
		scope   string
		ttl     time.Duration
		authAge time.Duration
	)
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.StringVar(&cfg.DataDir, "data-dir", "./data", "directory holding the dev secret mfad serve generated")
	fs.StringVar(&cfg.JWTSecret, "jwt-secret", "", "HS256 secret; empty = the dev secret of the data dir")
	fs.StringVar(&cfg.JWTIssuer, "jwt-issuer", "", "iss claim")
	fs.StringVar(&cfg.JWTAudience, "jwt-audience", "", "aud claim")
	annotateEnv(fs)
	fs.StringVar(&sub, "sub", "", "user id (sub claim), required")
	fs.StringVar(&scope, "scope", "", "space-separated scopes, e.g. mfa:admin")
	fs.DurationVar(&ttl, "ttl", time.Hour, "lifetime")
	fs.DurationVar(&authAge, "auth-age", 0, "how long ago the user authenticated (auth_time claim)")
	if err := parseFlags(fs, args, getenv, stdout); err != nil {
		return err
	}
	if sub == "" || len(sub) > 128 {
		return usageError{"token: --sub is required (1 to 128 characters)"}
	}
	if ttl <= 0 {
		return usageError{"token: --ttl must be positive"}
	}
	secret := []byte(cfg.JWTSecret)
	if len(secret) == 0 {
		// Never created here: a secret that no server reads would only sign tokens
		// every server refuses, and hide that mfad serve looks elsewhere.
		dir, err := filepath.Abs(cfg.DataDir)
		if err != nil {
			dir = filepath.Clean(cfg.DataDir)
		}
		missing := fmt.Sprintf("token: no signing secret: MFAD_JWT_SECRET (--jwt-secret) is not set and the data dir %s holds no %s; "+
			"mfad serve creates it there at its first start without a token issuer, or point --data-dir at the server's data dir",
			dir, devJWTSecretFile)
		key, err := dataDirKey(dir, devJWTSecretFile, false, missing)
		if err != nil {
			return err
		}
		secret = key
	}
	if len(secret) < 32 {
		return errors.New("token: the JWT secret must be at least 32 bytes")
	}
	now := time.Now()
	claims := jwt.MapClaims{
		"sub":       sub,
		"iat":       now.Unix(),
		"exp":       now.Add(ttl).Unix(),
		"auth_time": now.Add(-authAge).Unix(),
	}
	if scope != "" {
		claims["scope"] = scope
	}
	if cfg.JWTIssuer != "" {
		claims["iss"] = cfg.JWTIssuer
	}
	if cfg.JWTAudience != "" {
		claims["aud"] = cfg.JWTAudience
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		return fmt.Errorf("sign token: %w", err)
	}
	fmt.Fprintln(stdout, signed)
	return nil
}
