// Package handlers is mfad's HTTP side: an echo server speaking three dialects (banking
// settings, device REST, DruID activities) onto one core. It authenticates the caller,
// checks the shape of the request, builds a command, sends it to the workers and renders
// the reply in the dialect's envelope. It holds no SQL and no business rule; the one
// place that maps outcomes to each dialect's status and envelope is errors.go.
package handlers
