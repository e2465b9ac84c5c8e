// Package needcgo stops a build of mfad without cgo with a message that says so: its
// !cgo file does not compile. cmd/mfad imports it for that alone. It sits in a package
// of its own because the build of channels fails first without cgo, with an error
// that names neither cgo nor a compiler, and a package that does not depend on it is
// compiled, and reported, all the same.
package needcgo
