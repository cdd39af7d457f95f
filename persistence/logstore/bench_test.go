package logstore

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stroem/stroem"
)

// BenchmarkAppend measures durable appends (fsync on, in the test's temp
// directory) with 10 lines of ~80 bytes per push:
//
//	go test -run '^$' -bench BenchmarkAppend -benchtime 3s ./persistence/logstore/
//
// sequential: one pusher, so every push pays a full fsync.
// parallel-one-job: 32 pushers into one job (steps of one job running at once).
// parallel-many-jobs: 32 pushers, each into its own job (one file each).
func BenchmarkAppend(b *testing.B) {
	const perPush = 10
	lines := make([]string, perPush)
	for i := range lines {
		lines[i] = fmt.Sprintf("%02d the quick brown fox jumps over the lazy dog, again and again and again", i)
	}
	push := pushLines(lines...)

	report := func(b *testing.B, s *Store, start time.Time) {
		el := time.Since(start).Seconds()
		st := s.Stats()
		b.ReportMetric(float64(st.Appends)/el, "pushes/s")
		b.ReportMetric(float64(st.Lines)/el, "lines/s")
		b.ReportMetric(float64(st.Appends)/float64(max(st.Fsyncs, 1)), "pushes/fsync")
	}

	b.Run("sequential", func(b *testing.B) {
		s, err := Open(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		job := newJobID()
		start := time.Now()
		var off int64
		for b.Loop() {
			if _, err := s.Append(context.Background(), job, Append{Step: "s", Attempt: 1, Offset: off, Lines: push}); err != nil {
				b.Fatal(err)
			}
			off += perPush
		}
		report(b, s, start)
	})

	for _, many := range []bool{false, true} {
		name := "parallel-one-job"
		if many {
			name = "parallel-many-jobs"
		}
		b.Run(name, func(b *testing.B) {
			s, err := Open(b.TempDir(), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			shared := newJobID()
			var pusher atomic.Int64
			start := time.Now()
			b.SetParallelism(16) // × GOMAXPROCS pushers
			b.RunParallel(func(pb *testing.PB) {
				step := fmt.Sprint(pusher.Add(1))
				job := shared
				if many {
					job = newJobID()
				}
				var off int64
				for pb.Next() {
					if _, err := s.Append(context.Background(), job, Append{Step: step, Attempt: 1, Offset: off, Lines: push}); err != nil {
						b.Error(err)
						return
					}
					off += perPush
				}
			})
			report(b, s, start)
		})
	}
}

// BenchmarkRead measures reading a 100,000-line job from the start and its
// last 100 lines (the seek index at work).
func BenchmarkRead(b *testing.B) {
	s, err := Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	job := newJobID()
	batch := make([]string, 1000)
	for i := range batch {
		batch[i] = fmt.Sprintf("line %d of a long job log with some text in it", i)
	}
	for p := range 100 {
		if _, err := s.Append(context.Background(), job, Append{Step: "s", Attempt: 1, Offset: int64(p * 1000), Lines: pushLines(batch...)}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("all", func(b *testing.B) {
		for b.Loop() {
			n := 0
			if err := s.Scan(job, 0, "", func(stroem.LogLine) error { n++; return nil }); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(100000, "lines/op")
	})
	b.Run("tail", func(b *testing.B) {
		for b.Loop() {
			got, err := s.Read(job, 99900, "")
			if err != nil || len(got) != 100 {
				b.Fatal(err, len(got))
			}
		}
	})
}
