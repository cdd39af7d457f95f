package postgres

import (
	"encoding/binary"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// int8s is a bigint[] parameter encoded in one pass. pgx encodes a []int64
// element by element through an interface value (an allocation and a plan
// lookup each); a transition's read sends one xmin per step of the job
// (readStepsSQL), which made that encoding a tenth of the server's CPU in a
// 10,000-step fan-out. A nil int8s is NULL.
type int8s []int64

// int8sPlan writes PostgreSQL's binary array format (array_send): the
// header (one dimension, no nulls, element type int8), the dimension (its
// length, lower bound 1), then each element as its length (8) and value.
type int8sPlan struct{}

// SetNext is part of pgtype.WrappedEncodePlanNextSetter; the plan encodes
// the whole value itself.
func (int8sPlan) SetNext(pgtype.EncodePlan) {}

func (int8sPlan) Encode(value any, buf []byte) ([]byte, error) {
	v := value.(int8s)
	if v == nil {
		return nil, nil
	}
	buf = binary.BigEndian.AppendUint32(buf, 1) // dimensions
	buf = binary.BigEndian.AppendUint32(buf, 0) // has nulls
	buf = binary.BigEndian.AppendUint32(buf, pgtype.Int8OID)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(v)))
	buf = binary.BigEndian.AppendUint32(buf, 1) // lower bound
	for _, x := range v {
		buf = binary.BigEndian.AppendUint32(buf, 8)
		buf = binary.BigEndian.AppendUint64(buf, uint64(x))
	}
	return buf, nil
}

// wrapInt8s is the pgtype hook that gives an int8s its plan: pgx asks the
// TryWrapEncodePlanFuncs about a value its codec cannot encode (the array
// codec takes only an ArrayGetter). The next value, the same slice as a
// []int64, only has to be encodable for the planning to succeed.
func wrapInt8s(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
	if v, ok := value.(int8s); ok {
		return int8sPlan{}, []int64(v), true
	}
	return nil, nil, false
}

// registerTypes installs the store's encoders on a new connection's type
// map (pgxpool.Config.AfterConnect).
func registerTypes(conn *pgx.Conn) {
	m := conn.TypeMap()
	m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{wrapInt8s}, m.TryWrapEncodePlanFuncs...)
}
