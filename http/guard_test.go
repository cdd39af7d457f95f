package http

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/http/apierror"
	"github.com/stroem/stroem/stroemtest"
)

func TestBadTextInTheRequestIs400(t *testing.T) {
	t.Parallel()
	s := NewServer(Config{}, nil, nil, nil, nil, nil, nil, nil)
	h := s.Handler()
	for _, tc := range []struct {
		name, target string
		header       map[string]string
	}{
		{name: "NUL in a query value", target: "/api/jobs?workspace=%00"},
		{name: "invalid UTF-8 in a query value", target: "/api/jobs?task=%ff"},
		{name: "invalid UTF-8 in a query name", target: "/api/jobs?%fe=1"},
		{name: "malformed query escape", target: "/api/jobs?task=%zz"},
		{name: "NUL in a path segment", target: "/api/jobs/%00/logs"},
		{name: "invalid UTF-8 in a path segment", target: "/api/workspaces/default/tasks/x%ff"},
		{name: "NUL in a worker step name", target: "/worker/jobs/00000000-0000-0000-0000-000000000001/steps/a%00b/logs"},
		{name: "invalid UTF-8 in a header", target: "/api/jobs", header: map[string]string{"X-Thing": "a\xffb"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tc.target, nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
			var body errorBody
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			require.True(t, strings.Contains(body.Error, "NUL") || strings.Contains(body.Error, "query"), body.Error)
		})
	}
}

func TestJSONBodyWithNULInvalidUTF8OrHugeNumberIs400(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{body: `{"a":"\u0000"}`},
		{body: `{"a":"x\u0000y"}`},
		{body: "{\"a\":\"\xff\"}"},
		{body: "{\"a\":\"\x00\"}"},
		{body: `{"\u0000":1}`},
		{body: `{"a":"\\u0000"}`, ok: true}, // an escaped backslash: the text \u0000, not NUL
		{body: `{"a":"\\\u0000"}`},          // a backslash, then NUL
		{body: `{"a":"\u00001"}`},
		{body: `{"a":"é \u0041"}`, ok: true},
		// A number that fits no float64 is refused, not turned into text.
		{body: `{"a":1e400}`},
		{body: `{"a":[1, {"b": -1e400}]}`},
		{body: `{"a":12345678901234567890, "b": 1e300}`, ok: true}, // a float64 holds them
	} {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
		var dst map[string]any
		err := decodeJSON(req, &dst, false)
		if tc.ok {
			require.NoError(t, err, tc.body)
			continue
		}
		require.Error(t, err, tc.body)
		require.Equal(t, http.StatusBadRequest, apierror.Status(err), tc.body)
	}
}

// serve runs handler behind the server's middleware with the given
// timeouts on a real listener.
func serve(t *testing.T, read, write time.Duration, handler http.HandlerFunc) string {
	t.Helper()
	s := NewServer(Config{WriteTimeout: write}, nil, nil, nil, nil, nil, nil, nil)
	srv := &http.Server{
		Handler:           s.checkText(s.deadlines(s.limitBody(handler))),
		ReadHeaderTimeout: read, ReadTimeout: read, WriteTimeout: write,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func TestSlowBodyIsCutOffAtTheReadTimeout(t *testing.T) {
	t.Parallel()
	const readTimeout = 500 * time.Millisecond
	addr := serve(t, readTimeout, 5*time.Second, func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		if err := decodeJSON(r, &v, false); err != nil {
			writeError(w, r, slog.New(slog.DiscardHandler), err)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	// One byte every 100 ms: the body would take 100 s.
	took := stroemtest.SlowBody(t, addr, "/", 100*time.Millisecond, 5*time.Second)
	require.Less(t, took, readTimeout+time.Second, "cut off within the read timeout")
	require.Greater(t, took, readTimeout/2, "not before the timeout")
}

func TestLongRequestsOutliveTheReadTimeout(t *testing.T) {
	t.Parallel()
	const readTimeout = 300 * time.Millisecond
	addr := serve(t, readTimeout, 5*time.Second, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			_, _ = io.ReadAll(r.Body)
		}
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		for i := range 5 { // 5 × 200 ms: well past the read timeout
			select {
			case <-r.Context().Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			_, _ = io.WriteString(w, strings.Repeat("x", i+1)+"\n")
			_ = rc.Flush()
		}
		_, _ = io.WriteString(w, "end\n")
	})
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader(`{"a":1}`)
		}
		req, err := http.NewRequest(method, "http://"+addr+"/", body)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		sc := bufio.NewScanner(resp.Body)
		var last string
		for sc.Scan() {
			last = sc.Text()
		}
		_ = resp.Body.Close()
		require.Equal(t, "end", last, "%s: a streaming response is not cut by the read deadline", method)
	}
}
