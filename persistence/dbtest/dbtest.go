// Package dbtest gives tests a fresh PostgreSQL database, migrated with the
// real migrations, that is dropped when the test ends. It is for tests only.
//
// The server is STROEM_TEST_DATABASE_URL, by default the local
// postgres://postgres@127.0.0.1:5432/postgres (the user needs CREATEDB).
// When it cannot be reached, a PostgreSQL container is started with
// testcontainers-go (needs Docker). When neither works the test fails with a
// message saying how to provide a database; under -short it is skipped.
//
// Migrating takes far longer than copying a database, so the migrations run
// once into a template database named after a hash of the migration files
// (shared by every test binary and kept between runs), and each test's
// database is created from it with CREATE DATABASE … TEMPLATE.
package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/stroem/stroem/migrations"
	"github.com/stroem/stroem/persistence/postgres"
)

// EnvURL names the variable that points tests at a PostgreSQL server.
const EnvURL = "STROEM_TEST_DATABASE_URL"

// DefaultURL is the server used when EnvURL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres"

// templateLockKey serializes template creation across test binaries that run
// at the same time (go test ./... runs packages in parallel).
const templateLockKey = 0x5742_0e50

var (
	serverOnce sync.Once
	serverURL  string
	serverErr  error

	templateOnce sync.Once
	templateName string
	templateErr  error
)

// URL returns the URL of a fresh, migrated database of its own for tb,
// dropped (WITH (FORCE)) when tb ends.
func URL(tb testing.TB) string {
	tb.Helper()
	return create(tb, true)
}

// EmptyURL is URL without the migrations: an empty database, for testing
// the migrations themselves.
func EmptyURL(tb testing.TB) string {
	tb.Helper()
	return create(tb, false)
}

func create(tb testing.TB, migrated bool) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base, err := server(ctx)
	if err != nil {
		if testing.Short() {
			tb.Skipf("no PostgreSQL for tests (skipped under -short): %v", err)
		}
		tb.Fatalf("no PostgreSQL for tests: %v\n"+
			"Provide one: run PostgreSQL locally on 127.0.0.1:5432 (user postgres, trust auth), "+
			"or set %s=postgres://user:pass@host:port/db (a user with CREATEDB), "+
			"or make Docker available for testcontainers-go; go test -short skips these tests.",
			err, EnvURL)
	}
	stmt := ""
	if migrated {
		tpl, err := template(ctx, base)
		if err != nil {
			tb.Fatalf("dbtest: prepare the migrated template database: %v", err)
		}
		stmt = " TEMPLATE " + ident(tpl)
	}
	name := "stroem_t_" + randomHex(8)
	if err := adminExec(ctx, base, "CREATE DATABASE "+ident(name)+stmt); err != nil {
		tb.Fatalf("dbtest: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := adminExec(ctx, base, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)"); err != nil {
			tb.Errorf("dbtest: drop database %s: %v", name, err)
		}
	})
	return withDatabase(base, name)
}

// Store returns a Store on a fresh database for tb, closed when tb ends.
func Store(tb testing.TB) *postgres.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := postgres.Open(ctx, URL(tb), slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatalf("dbtest: open store: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// server finds a PostgreSQL server once per test binary.
func server(ctx context.Context) (string, error) {
	serverOnce.Do(func() {
		u := os.Getenv(EnvURL)
		if u == "" {
			u = DefaultURL
		}
		localErr := ping(ctx, u)
		if localErr == nil {
			serverURL = u
			return
		}
		ctr, err := tcpostgres.Run(ctx, "postgres:15-alpine", tcpostgres.BasicWaitStrategies())
		if err != nil {
			serverErr = fmt.Errorf("%s is unreachable (%v), and testcontainers-go could not start PostgreSQL (%v)",
				redact(u), localErr, err)
			return
		}
		serverURL, serverErr = ctr.ConnectionString(ctx, "sslmode=disable")
	})
	return serverURL, serverErr
}

func ping(ctx context.Context, u string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

// template returns the name of the migrated template database, creating it
// when this version of the migrations has none yet. It is built under
// another name and renamed when complete, so a crash never leaves a
// half-migrated template behind.
func template(ctx context.Context, base string) (string, error) {
	templateOnce.Do(func() {
		templateName, templateErr = buildTemplate(ctx, base)
	})
	return templateName, templateErr
}

func buildTemplate(ctx context.Context, base string) (string, error) {
	sum, err := migrationsHash()
	if err != nil {
		return "", err
	}
	name := "stroem_tpl_" + sum
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", err
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLockKey); err != nil {
		return "", err
	}
	defer admin.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", templateLockKey) //nolint:errcheck

	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	build := "stroem_tplb_" + randomHex(6)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident(build)); err != nil {
		return "", err
	}
	drop := func() {
		_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+ident(build)+" WITH (FORCE)")
	}
	s, err := postgres.Open(ctx, withDatabase(base, build), slog.New(slog.DiscardHandler))
	if err != nil {
		drop()
		return "", err
	}
	err = s.Migrate(ctx)
	s.Close()
	if err != nil {
		drop()
		return "", err
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+ident(build)+" RENAME TO "+ident(name)); err != nil {
		drop()
		return "", err
	}
	return name, nil
}

// migrationsHash names the template after the migrations' contents, so a
// changed migration gets a new template.
func migrationsHash() (string, error) {
	fsys := migrations.FS()
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return "", err
	}
	if len(names) == 0 {
		return "", errors.New("no migrations embedded")
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func adminExec(ctx context.Context, base, sql string) error {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// withDatabase returns base pointing at database name.
func withDatabase(base, name string) string {
	u, err := url.Parse(base)
	if err != nil {
		panic(fmt.Sprintf("dbtest: %s must be a postgres:// URL: %v", EnvURL, err))
	}
	u.Path = "/" + name
	return u.String()
}

// redact hides the password of a URL for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the test database URL"
	}
	return u.Redacted()
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
