package workspace

import (
	"encoding/json"
	"strconv"

	"github.com/stroem/stroem"
)

// Masker hides resolved secret values (and their encodings) before
// anything is stored, served or passed on: the one rule is stroem.Masker;
// this package only collects the values from a workspace's secrets.
type Masker = stroem.Masker

// NewMasker collects the values to hide from resolved secrets (as returned
// by ResolveSecrets): every string at any depth, and numbers as they print.
// Booleans and nulls are not secrets (masking every "true" would ruin the
// logs and hide nothing). See stroem.NewMasker for trimming, multi-line
// values and the shortest value masked.
func NewMasker(resolved map[string]any) *Masker {
	return stroem.NewMasker(SecretValues(resolved))
}

// SecretValues lists every string and number in resolved secrets.
func SecretValues(resolved map[string]any) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		case string:
			out = append(out, v)
		case json.Number:
			out = append(out, v.String())
		case int:
			out = append(out, strconv.Itoa(v))
		case int64:
			out = append(out, strconv.FormatInt(v, 10))
		case uint64:
			out = append(out, strconv.FormatUint(v, 10))
		case float64:
			out = append(out, formatFloat(v))
		}
	}
	walk(resolved)
	return out
}
