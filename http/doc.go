// Package http is Strøm's HTTP surface: the public REST API, the worker API
// (bearer token), the SSE log stream, and the one function that maps errors
// to status codes. Handlers decode, call the orchestrator or the store, and
// encode; they hold no job logic.
//
// Files that need the standard library's net/http import this package as
// stroemhttp. The Go client for this API lives in http/client, the SSE hub in
// http/logstream.
package http
