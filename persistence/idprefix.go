package persistence

import "strings"

// UUIDPrefixRange returns the smallest and the largest UUID (lowercase
// text) that start with p, the start of a UUID as printed
// (0b7e2c1e-5d7b-…, any case, dashes where a UUID has them). A range
// query on the id then finds the ids with that prefix using the primary
// key's index. ok is false when p cannot start a UUID.
func UUIDPrefixRange(p string) (lo, hi string, ok bool) {
	const zero = "00000000-0000-0000-0000-000000000000"
	const full = "ffffffff-ffff-ffff-ffff-ffffffffffff"
	p = strings.ToLower(p)
	if p == "" || len(p) > len(zero) {
		return "", "", false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if zero[i] == '-' {
			if c != '-' {
				return "", "", false
			}
			continue
		}
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", "", false
		}
	}
	return p + zero[len(p):], p + full[len(p):], true
}

// IDRange is the id range the filter's IDPrefix selects; an IDPrefix that
// cannot start a UUID selects nothing (an empty range).
func (f JobFilter) IDRange() (lo, hi string, set bool) {
	if f.IDPrefix == "" {
		return "", "", false
	}
	lo, hi, ok := UUIDPrefixRange(f.IDPrefix)
	if !ok {
		return "ffffffff-ffff-ffff-ffff-ffffffffffff", "00000000-0000-0000-0000-000000000000", true
	}
	return lo, hi, true
}
