package http

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"mime"
	"net/http"
	"strings"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/workspace"
)

// hookInput is a webhook job's input in the upstream's shape
// (reference/webhook-api.md): body (the parsed JSON body; null for a GET),
// headers (lowercase names, as the request spells them: content-type),
// method and query (without secret). Headers are the allowlisted ones
// only, never credentials: the same set as webhook.headers.
func hookInput(r *http.Request, body any, allow map[string]bool) map[string]any {
	headers := map[string]any{}
	for k, vs := range r.Header {
		name := HookHeaderName(k)
		if !allow[name] || hookCredentialHeaders[name] {
			continue
		}
		headers[strings.ToLower(k)] = strings.Join(vs, ", ")
	}
	query := map[string]any{}
	for k, vs := range r.URL.Query() {
		if k != "secret" {
			query[k] = strings.Join(vs, ",")
		}
	}
	if r.Method == http.MethodGet {
		body = nil
	}
	return map[string]any{"body": body, "headers": headers, "method": r.Method, "query": query}
}

// readHookBody reads a webhook's body: the JSON object readBody returns
// (its keys feed the older top-level input) and the value input.body
// holds. A body sent as JSON (Content-Type application/json or +json, or
// none) must be a JSON object, as before; a body of another content type
// that is not a JSON object (text/plain, a form) is kept as text in
// input.body, as upstream does, and gives no top-level keys.
func (t *Triggers) readHookBody(w http.ResponseWriter, r *http.Request) (map[string]any, any, error) {
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); ct == "" || err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		m, err := t.readBody(w, r)
		return m, m, err
	}
	limit := t.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, nil, stroem.Errorf(stroem.CodeTooLarge, "webhook body is larger than %d bytes", limit)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, nil, stroem.Errorf(stroem.CodeTooLarge, "webhook body is larger than %d bytes", mbe.Limit)
		}
		return nil, nil, stroem.Errorf(stroem.CodeInvalid, "read webhook body: %v", err)
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	m, err := t.readBody(w, r)
	switch {
	case err == nil:
		return m, m, nil
	case errors.Is(err, stroem.ErrInvalid):
		text := strings.ToValidUTF8(strings.ReplaceAll(string(b), "\x00", ""), "\uFFFD")
		return map[string]any{}, text, nil
	}
	return nil, nil, err
}

// hookTopLevel is the rest of a webhook job's input, in this project's
// older shape: the trigger's input defaults, then the body's keys that the
// task declares (so `{{ input.ref }}` keeps working). Keys the task does
// not declare stay in input.body only; keys named like the upstream's
// (body, headers, method, query) are never taken from here.
func hookTopLevel(defaults, body map[string]any, task *workspace.Task) map[string]any {
	input := maps.Clone(defaults)
	if input == nil {
		input = map[string]any{}
	}
	for k := range input {
		if workspace.IsWebhookInputKey(k) {
			delete(input, k)
		}
	}
	for k, v := range body {
		if workspace.IsWebhookInputKey(k) || task == nil || task.Input.Lookup(k) == nil {
			continue
		}
		input[k] = v // the body wins over the trigger's defaults
	}
	return input
}
