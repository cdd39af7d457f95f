package postgres_test

import (
	"context"
	"math"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/persistence/postgres"
)

// The store's one-pass bigint[] parameter reaches PostgreSQL as the array
// it holds, nil as NULL, in the bytes pgx's own encoding of the []int64
// makes.
func TestInt8sParameterIsTheArray(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()
	for name, v := range map[string][]int64{
		"nil":   nil,
		"empty": {},
		"one":   {42},
		"many":  {0, 1, -1, 1 << 40, math.MaxInt64, math.MinInt64, 7},
	} {
		t.Run(name, func(t *testing.T) {
			var got []int64
			var isNull bool
			var n int
			require.NoError(t, s.Pool().QueryRow(ctx,
				`SELECT $1::bigint[], $1::bigint[] IS NULL, coalesce(cardinality($1::bigint[]), -1)`,
				postgres.Int8s(v)).Scan(&got, &isNull, &n))
			require.Equal(t, v == nil, isNull)
			if v != nil {
				require.Equal(t, v, got)
				require.Equal(t, len(v), n)
			}

			conn, err := s.Pool().Acquire(ctx)
			require.NoError(t, err)
			defer conn.Release()
			m := conn.Conn().TypeMap()
			mine, err := m.Encode(pgtype.Int8ArrayOID, pgtype.BinaryFormatCode, postgres.Int8s(v), nil)
			require.NoError(t, err)
			pgxs, err := pgtype.NewMap().Encode(pgtype.Int8ArrayOID, pgtype.BinaryFormatCode, v, nil)
			require.NoError(t, err)
			require.Equal(t, pgxs, mine, "the bytes pgx itself sends for a []int64")
		})
	}
}

// The store's connections do use the one-pass encoder: pgx's own allocates
// once per element. Not parallel: it counts allocations.
func TestInt8sParameterEncodedInOnePass(t *testing.T) {
	s := dbtest.Store(t)
	conn, err := s.Pool().Acquire(context.Background())
	require.NoError(t, err)
	defer conn.Release()
	m := conn.Conn().TypeMap()
	v := postgres.Int8s(make([]int64, 1000))
	buf := make([]byte, 0, 16<<10)
	allocs := testing.AllocsPerRun(10, func() {
		_, err = m.Encode(pgtype.Int8ArrayOID, pgtype.BinaryFormatCode, v, buf[:0])
	})
	require.NoError(t, err)
	require.LessOrEqual(t, allocs, 2.0, "the store's connections encode an int8s in one pass")
}

// BenchmarkInt8sEncode compares the one-pass encoding of a 10,000-step
// job's xmins with pgx's own.
func BenchmarkInt8sEncode(b *testing.B) {
	v := make([]int64, 10_000)
	for i := range v {
		v[i] = int64(1_000_000 + i)
	}
	s := dbtest.Store(b)
	conn, err := s.Pool().Acquire(context.Background())
	require.NoError(b, err)
	defer conn.Release()
	m := conn.Conn().TypeMap()
	buf := make([]byte, 0, 1<<20)
	b.Run("pgx", func(b *testing.B) {
		for b.Loop() {
			buf, _ = m.Encode(pgtype.Int8ArrayOID, pgtype.BinaryFormatCode, v, buf[:0])
		}
	})
	b.Run("int8s", func(b *testing.B) {
		for b.Loop() {
			buf, _ = m.Encode(pgtype.Int8ArrayOID, pgtype.BinaryFormatCode, postgres.Int8s(v), buf[:0])
		}
	})
}
