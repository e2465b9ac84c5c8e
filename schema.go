package mfa

import _ "embed"

// Schema is the SQLite schema of the worker store. It is applied to an empty database
// and recorded as SchemaVersion in PRAGMA user_version.
//
//go:embed schema.sql
var Schema string

// SchemaVersion is the PRAGMA user_version of a database created from Schema. Bump it,
// and add a migration in channels/store.go, whenever schema.sql changes after a release.
const SchemaVersion = 1
