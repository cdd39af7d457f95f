package main

import (
	"context"
	"log/slog"
	"strings"

	"github.com/stroem/stroem/persistence/postgres"
)

// openPostgres is postgres.Open with an error a new user can act on: pgx
// reports each connection attempt (TLS, then plain) on its own line, so the
// same refusal came twice; and a missing role or database gets a hint on
// how to create it (docs/operations.md#postgresql).
func openPostgres(ctx context.Context, url string, log *slog.Logger) (*postgres.Store, error) {
	s, err := postgres.Open(ctx, url, log)
	if err != nil {
		return nil, explainDBError(err)
	}
	return s, nil
}

// explainDBError drops repeated lines from err's message and adds a hint
// for a missing role or database.
func explainDBError(err error) error {
	msg := strings.ReplaceAll(strings.ReplaceAll(dedupeLines(err.Error()), ":\n\t", ": "), "\n\t", "; ")
	switch {
	case strings.Contains(msg, "role ") && strings.Contains(msg, "does not exist"),
		strings.Contains(msg, "database ") && strings.Contains(msg, "does not exist"):
		msg += "; hint: create the role and database first, e.g. " +
			"psql -U postgres -c \"CREATE ROLE stroem LOGIN PASSWORD 'stroem'\" -c \"CREATE DATABASE stroem OWNER stroem\"" +
			" (see docs/operations.md#postgresql), or point db.url / STROEM__DB__URL at an existing one; " +
			"`stroem dev` needs no PostgreSQL"
	case strings.Contains(msg, "password authentication failed"):
		msg += "; hint: check the user and password in db.url (or STROEM__DB__URL)"
	}
	return &wrappedMsg{msg: msg, err: err}
}

// wrappedMsg is err with another message (errors.Is/As still see err).
type wrappedMsg struct {
	msg string
	err error
}

func (w *wrappedMsg) Error() string { return w.msg }
func (w *wrappedMsg) Unwrap() error { return w.err }

// dedupeLines removes lines equal to an earlier one.
func dedupeLines(s string) string {
	seen := map[string]bool{}
	var out []string
	for _, l := range strings.Split(s, "\n") {
		k := strings.TrimSpace(l)
		if k != "" && seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
