package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/stroem/stroem/persistence/postgres"
)

// newMigrateCmd is `stroem migrate up|status`: the schema migrations for
// operators who run them before (or instead of) a server start. The server
// also migrates at start, so this is optional.
func newMigrateCmd() *cobra.Command {
	var dbURL, output string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply or inspect the database migrations",
		Long: "Apply or inspect Strøm's database migrations. The database URL comes from --db-url,\n" +
			"else STROEM__DB__URL, else the server's default (" + defaultServerConfig().DB.URL + ").\n" +
			"Migrating is safe while servers run or start: one migration runs at a time.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.PersistentFlags().StringVar(&dbURL, "db-url", "", "PostgreSQL URL (default: $STROEM__DB__URL, then the server default)")
	cmd.PersistentFlags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.PersistentPreRunE = func(*cobra.Command, []string) error {
		if output != "text" && output != "json" {
			return usageError("--output must be text or json, not %q", output)
		}
		return nil
	}

	// list prints the migrations, after applying the pending ones when
	// apply is set.
	list := func(apply bool) func(*cobra.Command, []string) error {
		return func(c *cobra.Command, _ []string) error {
			return withStore(c.Context(), dbURL, c.ErrOrStderr(), func(ctx context.Context, s *postgres.Store) error {
				if apply {
					if err := s.Migrate(ctx); err != nil {
						return err
					}
				}
				return printMigrations(ctx, s, c.OutOrStdout(), output == "json")
			})
		}
	}
	up := &cobra.Command{Use: "up", Short: "Apply every pending migration", Args: cobra.NoArgs, RunE: list(true)}
	status := &cobra.Command{Use: "status", Short: "List the migrations and whether each is applied", Args: cobra.NoArgs, RunE: list(false)}
	cmd.AddCommand(up, status)
	return cmd
}

// migrateDBURL picks the database URL: the flag, then the environment, then
// the server's default.
func migrateDBURL(flag string) string {
	if flag != "" {
		return flag
	}
	if v := os.Getenv("STROEM__DB__URL"); v != "" {
		return v
	}
	return defaultServerConfig().DB.URL
}

func withStore(ctx context.Context, flag string, logTo io.Writer, fn func(context.Context, *postgres.Store) error) error {
	log := slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: slog.LevelInfo}))
	openCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	s, err := openPostgres(openCtx, migrateDBURL(flag), log)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(ctx, s)
}

// migrationJSON is one migration in --output json.
type migrationJSON struct {
	Version   int64      `json:"version"`
	Name      string     `json:"name"`
	Applied   bool       `json:"applied"`
	AppliedAt *time.Time `json:"applied_at"`
}

func printMigrations(ctx context.Context, s *postgres.Store, out io.Writer, asJSON bool) error {
	list, err := s.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		doc := make([]migrationJSON, 0, len(list))
		for _, m := range list {
			j := migrationJSON{Version: m.Version, Name: m.Name, Applied: m.Applied}
			if m.Applied {
				at := m.AppliedAt.UTC()
				j.AppliedAt = &at
			}
			doc = append(doc, j)
		}
		return printJSON(out, doc)
	}
	tw := newTable(out)
	fmt.Fprintln(tw, "VERSION\tMIGRATION\tSTATE\tAPPLIED AT")
	for _, m := range list {
		state, at := "pending", ""
		if m.Applied {
			state, at = "applied", m.AppliedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", m.Version, m.Name, state, at)
	}
	return tw.Flush()
}
