package mfa

import _ "embed"

// Schema is the readable schema of record of the worker store: what the SQLite store's
// numbered migrations (channels/sqlite/migrations) build, kept equal to them by a test.
// A change to the schema is a new migration and the same change here.
//
//go:embed schema.sql
var Schema string
