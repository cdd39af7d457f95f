package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/stroemtest"
)

// pgCluster is a throwaway PostgreSQL cluster owned by one test: initdb in a
// temporary directory, listening on 127.0.0.1 on a free port, so the test can
// stop, restart and crash it without touching the machine's cluster (which
// other tests use at the same time). initdb and pg_ctl refuse to run as
// root, so as root they run as the postgres OS user (runuser) on a directory
// chowned to it.
//
// The binaries come from STROEM_PG_BIN, else the newest
// /usr/lib/postgresql/*/bin, else PATH. Without them the test is skipped
// with a message saying so.
type pgCluster struct {
	t    *testing.T
	bin  string
	dir  string
	data string
	log  string
	port int
	opts string // the postgres options (-o) of pg_ctl start
	// runAs wraps commands (runuser -u postgres --) when running as root.
	runAs []string
}

func startPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	if skipAll {
		t.Skip("end-to-end tests are skipped under -short")
	}
	bin := pgBinDir()
	if bin == "" {
		t.Skip("no PostgreSQL server binaries (initdb, pg_ctl): set STROEM_PG_BIN or install postgresql")
	}
	dir, err := os.MkdirTemp("", "stroem-pg-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755)) // the postgres user must reach it
	c := &pgCluster{t: t, bin: bin, dir: dir, data: filepath.Join(dir, "data"), log: filepath.Join(dir, "postgres.log")}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("running as root and there is no postgres OS user to run initdb as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		require.NoError(t, os.Chown(dir, uid, gid))
		c.runAs = []string{"runuser", "-u", "postgres", "--"}
		if _, err := exec.LookPath("runuser"); err != nil {
			c.runAs = []string{"su", "-s", "/bin/sh", "postgres", "-c"} // exec joins and quotes
		}
	}
	c.port = freePort(t)

	c.run("initdb", "-D", c.data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	t.Cleanup(func() {
		// Whatever state the test left it in: gone, at once.
		_, _ = c.exec("pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop")
		if t.Failed() {
			b, _ := os.ReadFile(c.log)
			t.Logf("---- PostgreSQL log ----\n%s", tail(string(b), 8000))
		}
	})
	c.opts = fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s "+
		"-c fsync=off -c full_page_writes=off -c max_connections=80 -c shared_buffers=16MB", c.port, c.dir)
	c.start()
	return c
}

// URL is the cluster's postgres database (the server migrates it).
func (c *pgCluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// restart is `pg_ctl restart -m mode` (fast or immediate).
func (c *pgCluster) restart(mode string) {
	c.t.Helper()
	c.run("pg_ctl", "-D", c.data, "-l", c.log, "-w", "-t", "60", "-m", mode, "restart")
}

// stop is `pg_ctl stop -m mode`.
func (c *pgCluster) stop(mode string) {
	c.t.Helper()
	c.run("pg_ctl", "-D", c.data, "-w", "-t", "60", "-m", mode, "stop")
}

// start starts the cluster (again).
func (c *pgCluster) start() {
	c.t.Helper()
	c.run("pg_ctl", "-D", c.data, "-l", c.log, "-w", "-t", "60", "-o", c.opts, "start")
}

// ping reports whether the cluster accepts connections.
func (c *pgCluster) ping() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		return false
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx) == nil
}

func (c *pgCluster) run(name string, args ...string) {
	c.t.Helper()
	out, err := c.exec(name, args...)
	require.NoError(c.t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
}

func (c *pgCluster) exec(name string, args ...string) (string, error) {
	argv := append([]string{filepath.Join(c.bin, name)}, args...)
	switch {
	case len(c.runAs) > 0 && c.runAs[0] == "su":
		argv = append(append([]string{}, c.runAs...), shellQuote(argv))
	case len(c.runAs) > 0:
		argv = append(append([]string{}, c.runAs...), argv...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = c.dir
	cmd.Env = subprocessEnv() // the marker: a cluster left running is reported
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// pgBinDir finds the directory of initdb and pg_ctl.
func pgBinDir() string {
	if d := os.Getenv("STROEM_PG_BIN"); d != "" {
		return d
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if fileExists(filepath.Join(d, "initdb")) && fileExists(filepath.Join(d, "pg_ctl")) {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	addr := stroemtest.FreeAddr(t)
	_, p, _ := strings.Cut(addr, ":")
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return n
}

// shellQuote joins args into one /bin/sh command line.
func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
