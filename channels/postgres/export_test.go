package postgres

// Unchain makes s append audit records without the chain head (seq from a counter of
// its own, no links): only for BenchmarkChainHead, to measure what the head costs.
func Unchain(s *Store, base int64) {
	s.unchained = true
	s.unchainedSeq.Store(base)
}
