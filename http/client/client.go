package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stroem/stroem"
)

// DefaultTimeout bounds an ordinary request (not a long poll, not a stream).
const DefaultTimeout = 30 * time.Second

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// Client talks to one Strøm server. It is safe for concurrent use.
type Client struct {
	base      string // scheme://host[/prefix], no trailing slash
	token     string
	userAgent string
	hc        *http.Client
	timeout   time.Duration
	// cred is the worker's own credential from Register, sent instead of
	// token on every worker route but register.
	cred atomic.Pointer[string]
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends `Authorization: Bearer token` with every request: the
// worker token for worker routes.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient replaces the underlying HTTP client. Its Timeout should be
// zero: long polls and log streams outlive any fixed timeout, so the Client
// bounds each request itself.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithUserAgent sets the User-Agent header, so server logs tell the CLI from
// workers and versions apart.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithTimeout bounds each ordinary request (default DefaultTimeout). Long
// polls get their wait on top; log streams and archive downloads are bounded
// by the caller's context only.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// New returns a client for the server at baseURL (http or https, optionally
// with a path prefix).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil {
		return nil, fmt.Errorf("server URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("server URL %q: want http:// or https://", baseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("server URL %q: no host", baseURL)
	}
	u.RawQuery, u.Fragment = "", ""
	c := &Client{
		base:      strings.TrimRight(u.String(), "/"),
		userAgent: "stroem-client",
		timeout:   DefaultTimeout,
	}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// A worker keeps a long poll per slot plus heartbeats and log pushes
		// open at once; the default of 2 idle connections per host would
		// make it reconnect all the time.
		t.MaxIdleConnsPerHost = 64
		c.hc = &http.Client{Transport: t}
	}
	return c, nil
}

// BaseURL returns the server URL the client talks to.
func (c *Client) BaseURL() string { return c.base }

// request describes one call.
type request struct {
	method string
	path   string // already escaped, starting with "/"
	query  url.Values
	body   any // JSON-encoded when non-nil
	// raw, when set, is sent as the body as it is, with Content-Type
	// rawType and, when rawLen >= 0, that Content-Length (files.go).
	raw     io.Reader
	rawType string
	rawLen  int64
	header  http.Header
	// timeout bounds the whole call; 0 means c.timeout, <0 means none.
	timeout time.Duration
}

// send performs r and returns the response when its status is 2xx; any
// other status is turned into a *stroem.Error. The caller closes the body.
// cancel must be called once the body has been consumed.
func (c *Client) send(ctx context.Context, r request) (resp *http.Response, cancel context.CancelFunc, err error) {
	target := c.base + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, nil, fmt.Errorf("%s %s: encode body: %w", r.method, r.path, err)
		}
		body = bytes.NewReader(b)
	}
	timeout := r.timeout
	if timeout == 0 {
		timeout = c.timeout
	}
	// One context per request: with a timeout, or cancellable.
	var rctx context.Context
	if timeout > 0 {
		rctx, cancel = context.WithTimeout(ctx, timeout)
	} else {
		rctx, cancel = context.WithCancel(ctx)
	}
	if r.raw != nil {
		body = r.raw
	}
	req, err := http.NewRequestWithContext(rctx, r.method, target, body)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	if r.raw != nil {
		req.Header.Set("Content-Type", r.rawType)
		if r.rawLen >= 0 {
			req.ContentLength = r.rawLen
		}
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	req.Header.Set("User-Agent", c.userAgent)
	if tok := c.bearer(r.path); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err = c.hc.Do(req)
	if err != nil {
		err = c.transportError(ctx, rctx, r, timeout, err)
		cancel()
		return nil, nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer cancel()
		defer resp.Body.Close()
		return nil, nil, statusError(resp)
	}
	return resp, cancel, nil
}

// bearer is the token for a request to path: the worker's own credential
// on worker routes once it registered, else the configured token.
func (c *Client) bearer(path string) string {
	if strings.HasPrefix(path, "/worker/") && path != "/worker/register" {
		if cred := c.cred.Load(); cred != nil {
			return *cred
		}
	}
	return c.token
}

// Credential is the worker credential the last Register answered, or "".
func (c *Client) Credential() string {
	if cred := c.cred.Load(); cred != nil {
		return *cred
	}
	return ""
}

// get decodes the JSON answer of GET path.
func get[T any](ctx context.Context, c *Client, path string) (T, error) {
	var out T
	_, err := c.do(ctx, request{method: http.MethodGet, path: path}, &out)
	return out, err
}

// do performs r and decodes a JSON answer into out (when out is non-nil).
// It returns the status code of a 2xx answer.
func (c *Client) do(ctx context.Context, r request, out any) (int, error) {
	resp, cancel, err := c.send(ctx, r)
	if err != nil {
		return 0, err
	}
	defer cancel()
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return resp.StatusCode, nil
	}
	if strings.HasPrefix(r.path, "/api/") {
		return resp.StatusCode, c.decodeAPIAnswer(ctx, r, resp.Body, out)
	}
	if err := decodeJSON(resp.Body, out); err != nil {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("%s %s: %w", r.method, r.path, context.Cause(ctx))
		}
		return 0, fmt.Errorf("%s %s: read answer: %w", r.method, r.path, err)
	}
	return resp.StatusCode, nil
}

// decodeAPIAnswer decodes a 2xx answer of an /api/ route into out and
// tells an answer that is not Strøm's from one that broke off. The server
// URL may name some other JSON service (`{"status":"ok"}` where a job page
// was due): decoding it failed with a bare "cannot unmarshal", or, worse,
// gave an empty job list. Such an answer — one that does not decode, or an
// object none of whose keys the expected answer has — is refused with the
// question to ask. A body cut off on its way is a read error, as before.
// Worker routes (the hot path) keep the streaming decode without this
// check.
func (c *Client) decodeAPIAnswer(ctx context.Context, r request, body io.Reader, out any) error {
	raw, err := io.ReadAll(body)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s: %w", r.method, r.path, context.Cause(ctx))
		}
		return fmt.Errorf("%s %s: read answer: %w", r.method, r.path, err)
	}
	err = decodeJSON(bytes.NewReader(raw), out)
	if err == nil && !sharesAKey(raw, out) {
		err = errors.New("none of the fields a Strøm server sends here")
	}
	if err != nil {
		return fmt.Errorf("server at %s: %s %s: the answer is not a Strøm server's (%v): is that the address of a Strøm server?",
			c.base, r.method, r.path, err)
	}
	return nil
}

// decodeJSON decodes with UseNumber, so numbers keep the form they were
// written in (2 stays 2, big integers stay exact) when passed on to a step's
// environment or printed by the CLI.
func decodeJSON(r io.Reader, out any) error {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	return dec.Decode(out)
}

// transportError explains a request that got no HTTP answer.
func (c *Client) transportError(ctx, rctx context.Context, r request, timeout time.Duration, err error) error {
	if ctx.Err() != nil { // the caller gave up: not the server's fault
		return fmt.Errorf("%s %s: %w", r.method, r.path, context.Cause(ctx))
	}
	if errors.Is(rctx.Err(), context.DeadlineExceeded) && timeout > 0 {
		return &stroem.Error{Code: stroem.CodeUnavailable, Err: err,
			Message: fmt.Sprintf("server at %s did not answer %s %s within %s", c.base, r.method, r.path, timeout)}
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return &stroem.Error{Code: stroem.CodeUnavailable, Err: err,
			Message: fmt.Sprintf("server at %s is unreachable: connection refused", c.base)}
	case errors.As(err, &dnsErr):
		return &stroem.Error{Code: stroem.CodeUnavailable, Err: err,
			Message: fmt.Sprintf("server at %s is unreachable: cannot resolve host %s", c.base, dnsErr.Name)}
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return &stroem.Error{Code: stroem.CodeUnavailable, Err: err,
			Message: fmt.Sprintf("server at %s is unreachable: %v", c.base, opErr.Err)}
	}
	cause := err
	var uerr *url.Error
	if errors.As(err, &uerr) {
		cause = uerr.Err
	}
	return &stroem.Error{Code: stroem.CodeUnavailable, Err: err,
		Message: fmt.Sprintf("server at %s: %s %s failed: %v", c.base, r.method, r.path, cause)}
}

// apiError is the server's error body.
type apiError struct {
	Error   string   `json:"error"`
	Details []string `json:"details"`
}

// statusError turns a non-2xx answer into a *stroem.Error.
func statusError(resp *http.Response) error {
	code := codeForStatus(resp.StatusCode)
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var ae apiError
	if json.Unmarshal(b, &ae) == nil && ae.Error != "" {
		// The details say what the message does not: some answers name
		// their first problem in the message too, and it is not repeated.
		msg := ae.Error
		var more []string
		for _, d := range ae.Details {
			if !strings.Contains(msg, d) {
				more = append(more, d)
			}
		}
		if len(more) > 0 {
			msg += ": " + strings.Join(more, "; ")
		}
		return &stroem.Error{Code: code, Message: msg, Details: ae.Details}
	}
	text := strings.TrimSpace(string(b))
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	msg := "server answered " + resp.Status
	if text != "" && !strings.HasPrefix(text, "<") { // skip HTML pages from proxies
		msg += ": " + strings.Join(strings.Fields(text), " ")
	}
	return &stroem.Error{Code: code, Message: msg}
}

// codeForStatus is the inverse of the server's single error→status mapping.
func codeForStatus(status int) stroem.Code {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return stroem.CodeInvalid
	case http.StatusUnauthorized:
		return stroem.CodeUnauthorized
	case http.StatusForbidden:
		return stroem.CodeForbidden
	case http.StatusUnsupportedMediaType:
		return stroem.CodeUnsupported
	case http.StatusTooManyRequests:
		return stroem.CodeRateLimited
	case http.StatusNotFound:
		return stroem.CodeNotFound
	case http.StatusConflict:
		return stroem.CodeConflict
	case http.StatusRequestEntityTooLarge:
		return stroem.CodeTooLarge
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return stroem.CodeUnavailable
	}
	if status >= 400 && status < 500 {
		return stroem.CodeInvalid
	}
	return stroem.CodeInternal
}

// Retryable reports whether err may go away by itself: the server is
// unreachable, overloaded or restarting (unavailable), or failed internally.
// Client errors (invalid, unauthorized, not found, conflict, too large) and a
// cancelled context are not retryable.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, stroem.ErrUnavailable) {
		return false
	}
	switch stroem.ErrorCode(err) {
	case stroem.CodeUnavailable, stroem.CodeInternal:
		return true
	}
	return false
}

// seg escapes one path segment (a workspace, task, job or step name).
func seg(s string) string { return url.PathEscape(s) }
