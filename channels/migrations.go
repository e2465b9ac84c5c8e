package channels

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// ErrNewerSchema means the database was written by a newer mfad: it is refused rather
// than misread.
var ErrNewerSchema = errors.New("database schema is newer than this mfad")

// Migration is one numbered schema change of a store: migrations/NNNN_name.sql,
// applied in order, each in a transaction of its own, and recorded.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations reads the migrations in dir of fsys (a store's embedded files). Versions
// must run 1, 2, 3… without a gap, so a missing file cannot go unnoticed.
func Migrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		base, ok := strings.CutSuffix(e.Name(), ".sql")
		if !ok {
			continue
		}
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", e.Name())
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(b)})
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %d is missing (found %d_%s)", i+1, m.Version, m.Name)
		}
	}
	return out, nil
}

// MustMigrations is Migrations for a store's embedded files, read once at start: they
// are part of the build, so a broken set is a bug, not an error to handle.
func MustMigrations(fsys fs.FS, dir string) []Migration {
	ms, err := Migrations(fsys, dir)
	if err != nil {
		panic(err)
	}
	return ms
}
