package ui

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
)

//go:embed all:dist
var dist embed.FS

// Handler serves the built application: a file of dist when the path names
// one, else index.html (the single-page application's routes, such as
// /jobs/ID, are resolved in the browser). Hashed assets under /assets/ are
// cached for a year; index.html is revalidated on every load so a new
// binary's UI is picked up at once. Only GET and HEAD are answered.
func Handler() http.Handler {
	root, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the embed pattern guarantees dist exists
	}
	return handler(root)
}

func handler(root fs.FS) http.Handler {
	files := http.FileServerFS(root)
	zipped := &gzipCache{files: map[string][]byte{}}
	index, _ := fs.ReadFile(root, "index.html")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		p := path.Clean("/" + r.URL.Path)
		name := strings.TrimPrefix(p, "/")
		if name != "" && name != "index.html" {
			if st, err := fs.Stat(root, name); err == nil && !st.IsDir() {
				if strings.HasPrefix(name, "assets/") {
					w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
				}
				w.Header().Add("Vary", "Accept-Encoding")
				if gz := zipped.get(root, name); gz != nil && acceptsGzip(r) {
					if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
						w.Header().Set("Content-Type", ct)
					}
					w.Header().Set("Content-Encoding", "gzip")
					http.ServeContent(w, r, name, st.ModTime(), bytes.NewReader(gz))
					return
				}
				files.ServeHTTP(w, r)
				return
			}
			if strings.HasPrefix(name, "assets/") || path.Ext(name) != "" && !strings.Contains(name, "/") {
				// A missing asset is a 404, not the app: a stale page asking
				// for an old chunk must fail loudly, not parse HTML as JS.
				http.NotFound(w, r)
				return
			}
		}
		if index == nil {
			http.Error(w, "the web UI was not built into this binary (cd ui && npm ci && npm run build)", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "same-origin")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(index)
		}
	})
}

// gzipCache holds the gzip form of the compressible files, made on first
// request (the embedded files never change).
type gzipCache struct {
	mu    sync.Mutex
	files map[string][]byte
}

func (c *gzipCache) get(root fs.FS, name string) []byte {
	switch path.Ext(name) {
	case ".js", ".css", ".svg", ".json", ".html", ".txt":
	default:
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gz, ok := c.files[name]; ok {
		return gz
	}
	raw, err := fs.ReadFile(root, name)
	if err != nil || len(raw) < 1024 {
		c.files[name] = nil
		return nil
	}
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	_, _ = zw.Write(raw)
	_ = zw.Close()
	c.files[name] = b.Bytes()
	return c.files[name]
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
