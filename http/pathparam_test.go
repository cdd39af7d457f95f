package http

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/require"
)

// A path parameter is unescaped exactly once: an artifact named a%41.txt
// (sent as a%2541.txt) is not aA.txt, whether or not the request's path
// needed a RawPath.
func TestPathParamUnescapesOnce(t *testing.T) {
	t.Parallel()
	var got string
	r := chi.NewRouter()
	r.Get("/x/{id}/*", func(w http.ResponseWriter, r *http.Request) { got = pathParam(r, "id") + "|" + pathParam(r, "*") })
	for path, want := range map[string]string{
		"/x/j/a%2541.txt":          "j|a%41.txt",
		"/x/j/50%25.txt":           "j|50%.txt",
		"/x/j/dir/my%20file.txt":   "j|dir/my file.txt",
		"/x/j/a%2Fb/c%2541":        "j|a/b/c%41",
		"/x/j%2541/%252e%252e.txt": "j%41|%2e%2e.txt",
	} {
		got = ""
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
		require.Equal(t, want, got, path)
	}
}
