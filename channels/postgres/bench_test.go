package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mfad/mfad/channels"
	"github.com/mfad/mfad/channels/postgres"
	"github.com/mfad/mfad/channels/postgres/pgtest"
	"github.com/mfad/mfad/channels/sqlite/sqlitetest"
)

// BenchmarkChainHead measures what the single audit chain costs several writers: each
// writer commits batches of 64 commands (a user row update and one audit record each,
// SCALEOUT.md's "command"), with the head taken last, against the same batches with no
// head at all. It reports commands/s and the head's mean hold per batch (lock granted
// to COMMIT returned), the figure BENCHMARKS.md's estimate starts from. The server is
// durable (fsync on); run it alone:
//
//	go test -run '^$' -bench ChainHead -benchtime 5s ./channels/postgres
func BenchmarkChainHead(b *testing.B) {
	pgtest.Require(b)
	srv, err := pgtest.Start(pgtest.Options{Durable: true, Settings: map[string]string{"shared_buffers": "'256MB'"}})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Stop()
	for _, head := range []bool{true, false} {
		for _, writers := range []int{1, 4, 8} {
			name := fmt.Sprintf("head=%v/writers=%d", head, writers)
			b.Run(name, func(b *testing.B) { benchBatches(b, srv, head, writers) })
		}
	}
}

const benchBatch = 64

func benchBatches(b *testing.B, srv *pgtest.Server, head bool, writers int) {
	ctx := context.Background()
	name, err := srv.CreateDatabase(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	stores := make([]*postgres.Store, writers)
	for w := range stores {
		s, err := postgres.Open(ctx, srv.URL(name), sqlitetest.Chain(), postgres.Options{MaxConns: 2})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		if !head {
			postgres.Unchain(s, int64(w)<<40)
		}
		stores[w] = s
	}
	var (
		next atomic.Int64
		done atomic.Int64
		wg   sync.WaitGroup
	)
	b.ResetTimer()
	start := time.Now()
	for w, s := range stores {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				units := make([]channels.Unit, benchBatch)
				for i := range units {
					user := fmt.Sprintf("w%d-u%d", w, i)
					units[i] = channels.Unit{UserID: user, Run: func(ctx context.Context, tx channels.Tx) error {
						if _, _, err := tx.AddFailure(ctx, user, t0); err != nil {
							return err
						}
						return tx.Append(ctx, event(user, i))
					}}
				}
				for i, err := range s.Write(ctx, units) {
					if err != nil {
						b.Errorf("unit %d: %v", i, err)
						return
					}
				}
				done.Add(benchBatch)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.ReportMetric(float64(done.Load())/elapsed.Seconds(), "commands/s")
	var batches int64
	var held time.Duration
	for _, s := range stores {
		n, h := s.HeadStats()
		batches += n
		held += h
	}
	if batches > 0 {
		b.ReportMetric(float64(held.Microseconds())/float64(batches), "µs-head-held/batch")
		b.ReportMetric(held.Seconds()/elapsed.Seconds(), "head-busy-fraction")
	}
}
