// Package http is Strøm's HTTP surface: the public REST API and the worker
// API (bearer token). Handlers decode, call the orchestrator, the worker
// protocol (actors.Workers) or the store, and encode; they hold no job
// logic. A handler returns its error; one wrapper answers it through the
// one error→status mapping (http/apierror), which the SSE log stream
// (http/logstream) uses too.
//
// Files that need the standard library's net/http import this package as
// stroemhttp. The Go client for this API lives in http/client, the SSE hub in
// http/logstream.
package http
