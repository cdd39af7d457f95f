package workspace

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const connectionsYAML = `
connection_types:
  postgres:
    host: { type: string, required: true }
    port: { type: integer, default: 5432 }
    database: { type: string, required: true }
    password: { type: string, required: true, secret: true }
connections:
  prod_db:
    type: postgres
    host: db.example.com
    port: 6543
    database: myapp
    password: "{{ 'ref+env://STROEM_TEST_CONN_PW' | vals }}"
  staging_db:
    type: postgres
    host: staging
    database: app
    password: literal-pw
  custom_api:
    url: https://api.example.com
actions:
  migrate:
    type: script
    script: "echo {{ input.db.host }}:{{ input.db.port }}"
    input:
      db: { type: postgres }
tasks:
  deploy:
    input:
      db: { type: postgres }
    flow:
      m:
        action: migrate
        input:
          db: "{{ input.db }}"
`

func TestConnections(t *testing.T) {
	t.Setenv("STROEM_TEST_CONN_PW", "s3cret-from-env")
	ws := loadOne(t, connectionsYAML)
	require.Empty(t, ws.Problems)
	require.Equal(t, FieldType("postgres"), ws.Tasks["deploy"].Input.Lookup("db").Type)
	require.EqualValues(t, 5432, ws.Connections["staging_db"].Values["port"], "the type's default")
	require.Equal(t, "", ws.Connections["custom_api"].Type)

	out, problems, secrets := ws.ResolveConnections(ws.Tasks["deploy"].Input, map[string]any{"db": "prod_db"})
	require.Empty(t, problems)
	require.Equal(t, map[string]any{"host": "db.example.com", "port": 6543, "database": "myapp", "password": "s3cret-from-env"}, out["db"])
	require.Equal(t, []string{"s3cret-from-env"}, secrets)

	// An object is passed through; an unknown name is a problem naming
	// the connections that fit.
	obj := map[string]any{"host": "localhost"}
	out, problems, _ = ws.ResolveConnections(ws.Tasks["deploy"].Input, map[string]any{"db": obj})
	require.Empty(t, problems)
	require.Equal(t, obj, out["db"])
	_, problems, _ = ws.ResolveConnections(ws.Tasks["deploy"].Input, map[string]any{"db": "nope"})
	require.Equal(t, []string{`input "db": no connection "nope" of type postgres (have: custom_api, prod_db, staging_db)`}, problems)

	refs := ws.ConnectionSecretRefs()
	require.Equal(t, map[string]any{"prod_db": map[string]any{"password": "{{ 'ref+env://STROEM_TEST_CONN_PW' | vals }}"}, "staging_db": map[string]any{"password": "literal-pw"}}, refs)
}

func TestConnectionProblems(t *testing.T) {
	t.Parallel()
	ws := loadOne(t, `
connection_types:
  pg:
    host: { type: string, required: true }
    tags: { type: array }
connections:
  a: { type: pg }
  b: { type: pgg, host: x }
  c: { type: pg, host: "", extra: 1 }
actions:
  x:
    type: script
    script: echo
    input:
      db: { type: postgress }
tasks:
  t:
    flow:
      s: { action: x }
`)
	msgs := strings.Join(problemTexts(ws), "\n")
	for _, want := range []string{
		`type "array" is not allowed for a connection property`,
		`connection a: required value "host" (connection type pg) is missing`,
		`connection b: unknown connection type "pgg"`,
		`connection c: value "host" is empty`,
		`input: db: type: unknown value "postgress"`,
	} {
		require.Contains(t, msgs, want)
	}
	var warns []string
	for _, w := range ws.Warnings {
		warns = append(warns, w.Message)
	}
	require.Contains(t, strings.Join(warns, "\n"), `connection c: value "extra" is not a property of connection type pg`)
}

// A field's default may name a connection (upstream applies defaults, then
// resolves connections); a ConnectionSet keeps what an action's inputs may
// name and resolves as the workspace does.
func TestConnectionDefaultsAndSets(t *testing.T) {
	ws := loadOne(t, connectionsYAML+`
  with-default:
    input:
      db: { type: postgres, default: staging_db }
    flow:
      m: { action: migrate, input: { db: "{{ input.db }}" } }
`)
	require.Empty(t, ws.Problems)
	out, problems, secrets := ws.ResolveConnections(ws.Tasks["with-default"].Input, nil)
	require.Empty(t, problems)
	require.Equal(t, map[string]any{"host": "staging", "port": int64(5432), "database": "app", "password": "literal-pw"}, out["db"])
	require.Equal(t, []string{"literal-pw"}, secrets)

	set := ws.ConnectionsFor(ws.Actions["migrate"].Input, nil)
	require.Equal(t, []string{"postgres"}, slices.Sorted(maps.Keys(set.Types)))
	require.Equal(t, []string{"custom_api", "prod_db", "staging_db"}, slices.Sorted(maps.Keys(set.Connections)))
	require.Nil(t, ws.ConnectionsFor(Schema{{Name: "x", Type: TypeString}}, nil))
	out, problems, _ = set.Resolve(ws.Actions["migrate"].Input, map[string]any{"db": "staging_db"})
	require.Empty(t, problems)
	require.Equal(t, "staging", out["db"].(map[string]any)["host"])
	_, problems, _ = set.Resolve(ws.Actions["migrate"].Input, map[string]any{"db": "nope"})
	require.Equal(t, []string{`input "db": no connection "nope" of type postgres (have: custom_api, prod_db, staging_db)`}, problems)
}
