package http

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// writeJSON answers the bytes json.Marshal gives and a newline (HTML
// escaped as before), whichever buffer the pool hands it, and a value that
// cannot be encoded is still the JSON 500.
func TestWriteJSONWritesMarshalsBytes(t *testing.T) {
	t.Parallel()
	big := make([]string, 20000) // grows a buffer past what the pool keeps
	for i := range big {
		big[i] = "<&>"
	}
	for _, v := range []any{
		struct{}{},
		map[string]any{"a": "<script>&", "n": 2},
		stroem.CompletionResponse{Next: &stroem.Assignment{JobID: "j", Input: map[string]any{"x": "é\u2028"}}},
		big,
		map[string]any{"short": 1}, // after a large buffer: nothing left over
	} {
		rec := httptest.NewRecorder()
		writeJSON(rec, http.StatusCreated, v)
		want, err := json.Marshal(v)
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, rec.Code)
		require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
		require.Equal(t, string(want)+"\n", rec.Body.String())
	}
	rec := httptest.NewRecorder()
	writeJSON(rec, http.StatusOK, map[string]any{"f": func() {}})
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	require.JSONEq(t, `{"error":"internal error: encode response"}`, rec.Body.String())

	rec = httptest.NewRecorder()
	writeEmpty(rec)
	want, _ := json.Marshal(stroem.CompletionResponse{})
	require.Equal(t, string(want)+"\n", rec.Body.String())
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
}

// parseJobID answers every accepted form of a UUID in canonical form, the
// canonical one as it is.
func TestParseJobIDIsCanonical(t *testing.T) {
	t.Parallel()
	const want = "7f1c9a52-3b1e-4c8a-9d2f-0123456789ab"
	for _, id := range []string{
		want,
		"7F1C9A52-3B1E-4C8A-9D2F-0123456789AB",
		"7f1c9a52-3b1e-4c8a-9d2f-0123456789Ab",
		"7f1c9a523b1e4c8a9d2f0123456789ab",
		"{7f1c9a52-3b1e-4c8a-9d2f-0123456789ab}",
		"urn:uuid:7f1c9a52-3b1e-4c8a-9d2f-0123456789ab",
	} {
		got, err := parseJobID(id)
		require.NoError(t, err, id)
		require.Equal(t, want, got, id)
	}
	for _, id := range []string{"", "7f1c9a52-3b1e-4c8a-9d2f-0123456789ag", "7f1c9a52x3b1e-4c8a-9d2f-0123456789ab"} {
		_, err := parseJobID(id)
		require.Error(t, err, id)
	}
}
