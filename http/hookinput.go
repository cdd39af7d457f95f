package http

import (
	"maps"
	"net/http"
	"strings"

	"github.com/stroem/stroem/workspace"
)

// hookInput is a webhook job's input in the upstream's shape
// (reference/webhook-api.md): body (the parsed JSON body; null for a GET),
// headers (lowercase names, as the request spells them: content-type),
// method and query (without secret). Headers are the allowlisted ones
// only, never credentials: the same set as webhook.headers.
func hookInput(r *http.Request, body map[string]any, allow map[string]bool) map[string]any {
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
	var b any = body
	if r.Method == http.MethodGet {
		b = nil
	}
	return map[string]any{"body": b, "headers": headers, "method": r.Method, "query": query}
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
