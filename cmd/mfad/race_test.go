//go:build race

package main

// raceEnabled makes the end-to-end tests build the mfad binary with -race as well, so
// a data race in the real process fails the run (the detector exits with status 66).
const raceEnabled = true
