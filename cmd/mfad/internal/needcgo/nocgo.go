//go:build !cgo

package needcgo

// mfad keeps its data in SQLite through cgo (mattn/go-sqlite3). Without cgo, because
// no C compiler was found or CGO_ENABLED=0 was set, that driver compiles to a stub
// that fails at run time; this file makes the build fail instead, and the name of the
// missing constant is the message.
const _ = mfad_needs_cgo__install_a_C_compiler_such_as_gcc_and_build_with_CGO_ENABLED_1
