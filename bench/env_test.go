package bench

import (
	"net/url"
	"testing"
)

func TestLoopbackPlain(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in, want string
		noted    bool
	}{
		{"postgres://postgres@127.0.0.1:5432/db", "postgres://postgres@127.0.0.1:5432/db?sslmode=disable", true},
		{"postgres://postgres@localhost/db?connect_timeout=5", "postgres://postgres@localhost/db?connect_timeout=5&sslmode=disable", true},
		{"postgres://postgres@[::1]:5432/db", "postgres://postgres@[::1]:5432/db?sslmode=disable", true},
		// An explicit sslmode is the user's: kept, also on loopback.
		{"postgres://postgres@127.0.0.1/db?sslmode=require", "postgres://postgres@127.0.0.1/db?sslmode=require", false},
		// Another host: whatever pgx's default is.
		{"postgres://postgres@db.example.com/db", "postgres://postgres@db.example.com/db", false},
		{"postgres://postgres@10.0.0.5/db", "postgres://postgres@10.0.0.5/db", false},
	} {
		u, err := url.Parse(c.in)
		if err != nil {
			t.Fatal(err)
		}
		note := benchLoopbackPlain(u)
		if got := u.String(); got != c.want || (note != "") != c.noted {
			t.Errorf("%s: got %s (note %q), want %s (noted %v)", c.in, got, note, c.want, c.noted)
		}
	}
}
