package postgres

// Unchain makes s append audit records without the chain head (seq from a counter of
// its own, no links): only for BenchmarkChainHead, to measure what the head costs.
func Unchain(s *Store, base int64) {
	s.unchained = true
	s.unchainedSeq.Store(base)
}

// CopiedColumns are the columns `mfad store copy` moves, by table.
func CopiedColumns() map[string][]string {
	out := map[string][]string{}
	for _, c := range copiedTables {
		out[c.name] = c.columns
	}
	return out
}

// Mispredicted is how many batches ran again because a write answered from a unit's
// read did not go as predicted when it was sent.
func Mispredicted(s *Store) int64 { return s.mispredicted.Load() }
