//go:build !unix

package main

// lockDataDir does nothing where there is no flock: two mfad serve on one data dir are
// then the operator's to avoid.
func lockDataDir(string) (func() error, error) { return func() error { return nil }, nil }
