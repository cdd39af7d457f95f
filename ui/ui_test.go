package ui

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

func get(t *testing.T, h http.Handler, method, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	return string(b)
}

func TestHandlerServesFilesAndFallsBackToTheApp(t *testing.T) {
	t.Parallel()
	h := handler(fstest.MapFS{
		"index.html":         {Data: []byte("<div id=root></div>")},
		"assets/app-1a2b.js": {Data: []byte("console.log(1)")},
		"favicon.svg":        {Data: []byte("<svg/>")},
	})

	r := get(t, h, "GET", "/")
	require.Equal(t, 200, r.StatusCode)
	require.Equal(t, "<div id=root></div>", body(t, r))
	require.Equal(t, "no-cache", r.Header.Get("Cache-Control"))

	for _, p := range []string{"/jobs", "/jobs/0d9c6a8e-1111-2222-3333-444455556666", "/tasks/default/hello-world", "/index.html"} {
		r := get(t, h, "GET", p)
		require.Equal(t, 200, r.StatusCode, p)
		require.Contains(t, body(t, r), "id=root", "%s is a route of the app", p)
	}

	r = get(t, h, "GET", "/assets/app-1a2b.js")
	require.Equal(t, 200, r.StatusCode)
	require.Equal(t, "console.log(1)", body(t, r))
	require.Contains(t, r.Header.Get("Cache-Control"), "immutable")
	require.Contains(t, r.Header.Get("Content-Type"), "javascript")

	require.Equal(t, 404, get(t, h, "GET", "/assets/old-chunk.js").StatusCode, "a missing asset is not the app")
	require.Equal(t, 404, get(t, h, "GET", "/missing.png").StatusCode)
	require.Equal(t, 200, get(t, h, "GET", "/favicon.svg").StatusCode)

	r = get(t, h, "HEAD", "/jobs")
	require.Equal(t, 200, r.StatusCode)
	require.Empty(t, body(t, r))
	r = get(t, h, "POST", "/jobs")
	require.Equal(t, 405, r.StatusCode)
	require.Equal(t, "GET, HEAD", r.Header.Get("Allow"))

	r = get(t, h, "GET", "/../../etc/passwd")
	require.Equal(t, 200, r.StatusCode)
	require.Contains(t, body(t, r), "id=root", "paths are cleaned, never outside the embedded files")
}

func TestHandlerGzipsAssets(t *testing.T) {
	t.Parallel()
	js := strings.Repeat("console.log('hello');\n", 200)
	h := handler(fstest.MapFS{"index.html": {Data: []byte("x")}, "assets/a.js": {Data: []byte(js)}})
	req := httptest.NewRequest("GET", "/assets/a.js", nil)
	req.Header.Set("Accept-Encoding", "br, gzip")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, 200, rec.Code)
	require.Equal(t, "gzip", rec.Header().Get("Content-Encoding"))
	require.Contains(t, rec.Header().Get("Content-Type"), "javascript")
	require.Less(t, rec.Body.Len(), len(js)/4)
	zr, err := gzip.NewReader(rec.Body)
	require.NoError(t, err)
	plain, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.Equal(t, js, string(plain))

	r := get(t, h, "GET", "/assets/a.js") // no Accept-Encoding
	require.Empty(t, r.Header.Get("Content-Encoding"))
	require.Equal(t, js, body(t, r))
	req.Header.Set("Accept-Encoding", "gzip;q=0")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Empty(t, rec.Header().Get("Content-Encoding"))
}

func TestHandlerWithoutABuild(t *testing.T) {
	t.Parallel()
	r := get(t, handler(fstest.MapFS{}), "GET", "/")
	require.Equal(t, 404, r.StatusCode)
	require.Contains(t, body(t, r), "npm run build")
}

func TestEmbeddedBuild(t *testing.T) {
	t.Parallel()
	r := get(t, Handler(), "GET", "/")
	require.Equal(t, 200, r.StatusCode)
	require.Contains(t, body(t, r), `<div id="root">`, "ui/dist holds the built app")
}
