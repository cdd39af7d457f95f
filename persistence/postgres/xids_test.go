package postgres_test

import (
	"context"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/persistence/postgres"
)

// The store's one-pass xid[] parameter reaches PostgreSQL as the array it
// holds, nil as NULL, in the bytes pgx's own encoding of the ids makes; an
// id that is no xid is an error, not a wrong id.
func TestXidsParameterIsTheArray(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()
	for name, v := range map[string][]int64{
		"nil":   nil,
		"empty": {},
		"one":   {42},
		"many":  {0, 1, 3, 1 << 31, math.MaxUint32, 7},
	} {
		t.Run(name, func(t *testing.T) {
			var got *string
			require.NoError(t, s.Pool().QueryRow(ctx, `SELECT $1::xid[]::text`, postgres.Xids(v)).Scan(&got))
			if v == nil {
				require.Nil(t, got)
				return
			}
			want := make([]string, len(v))
			ids := make([]uint32, len(v))
			for i, x := range v {
				want[i], ids[i] = strconv.FormatInt(x, 10), uint32(x)
			}
			require.NotNil(t, got)
			require.Equal(t, "{"+strings.Join(want, ",")+"}", *got)

			conn, err := s.Pool().Acquire(ctx)
			require.NoError(t, err)
			defer conn.Release()
			mine, err := conn.Conn().TypeMap().Encode(pgtype.XIDArrayOID, pgtype.BinaryFormatCode, postgres.Xids(v), nil)
			require.NoError(t, err)
			pgxs, err := pgtype.NewMap().Encode(pgtype.XIDArrayOID, pgtype.BinaryFormatCode, ids, nil)
			require.NoError(t, err)
			require.Equal(t, pgxs, mine, "the bytes pgx itself sends for the ids")
		})
	}
	for _, bad := range []int64{-1, math.MaxUint32 + 1} {
		err := s.Pool().QueryRow(ctx, `SELECT $1::xid[]::text`, postgres.Xids{1, bad}).Scan(new(string))
		require.ErrorContains(t, err, "out of range", "%d", bad)
	}
}

// The store's connections do use the one-pass encoder: pgx's own allocates
// once per element. Not parallel: it counts allocations.
func TestXidsParameterEncodedInOnePass(t *testing.T) {
	s := dbtest.Store(t)
	conn, err := s.Pool().Acquire(context.Background())
	require.NoError(t, err)
	defer conn.Release()
	m := conn.Conn().TypeMap()
	v := postgres.Xids(make([]int64, 1000))
	buf := make([]byte, 0, 16<<10)
	allocs := testing.AllocsPerRun(10, func() {
		_, err = m.Encode(pgtype.XIDArrayOID, pgtype.BinaryFormatCode, v, buf[:0])
	})
	require.NoError(t, err)
	require.LessOrEqual(t, allocs, 2.0, "the store's connections encode xids in one pass")
}

// BenchmarkXidsEncode compares the one-pass encoding of a 10,000-step job's
// xmins with pgx's own (of the same ids as a []int64 into bigint[], what
// the read sent before).
func BenchmarkXidsEncode(b *testing.B) {
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
	b.Run("pgx int8[]", func(b *testing.B) {
		for b.Loop() {
			buf, _ = m.Encode(pgtype.Int8ArrayOID, pgtype.BinaryFormatCode, v, buf[:0])
		}
	})
	b.Run("xids", func(b *testing.B) {
		for b.Loop() {
			buf, _ = m.Encode(pgtype.XIDArrayOID, pgtype.BinaryFormatCode, postgres.Xids(v), buf[:0])
		}
	})
}
