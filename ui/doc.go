// Package ui serves Strøm's web front end: the React application built
// from this folder (npm ci && npm run build) into dist/, embedded in the
// binary so a server needs neither Node nor files on disk.
//
// It owns only static files. It must not serve data: the application talks
// to the public API under /api like any other client, and the server keeps
// every route it has (/api, /hooks, /worker, /healthz, /readyz, /metrics) —
// the UI answers only the paths no route claims.
package ui
