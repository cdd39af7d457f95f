package workspace

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Connections (issue 22; docs/workflows.md#connections): named, typed
// objects of external-system settings in the workspace YAML. A
// `connection_types:` entry is a schema of properties (type, required,
// default, secret); a `connections:` entry names its type (or none) and
// holds the values, which may be secret references or `vals` templates
// like secrets. A task input whose type names a connection type takes a
// connection's name, which job creation replaces with its values.

// ConnectionType is the schema of a kind of connection.
type ConnectionType struct {
	Name   string `json:"name"`
	Fields Schema `json:"fields"`
	Pos    Pos    `json:"-"`
}

// Connection is one named connection.
type Connection struct {
	Name string `json:"name"`
	// Type names a ConnectionType; "" for an untyped connection.
	Type string `json:"type,omitempty"`
	// Values are as written (references unresolved), defaults applied.
	Values map[string]any `json:"-"`
	Pos    Pos            `json:"-"`
}

// connectionPropertyTypes are the types a connection property may have.
var connectionPropertyTypes = []FieldType{TypeString, TypeText, TypeInteger, TypeNumber, TypeBoolean, TypeDate, TypeDateTime}

// connTypeName is what a field type naming a connection type may look like
// (a library's is namespaced: common.postgres).
var connTypeName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// connectionTopKeys are the top-level keys of a workflow file that hold
// connections.
var connectionTopKeys = []string{"connection_types", "connections"}

// connRef is a field whose type is not a built-in one: it must name a
// connection type.
type connRef struct {
	typ  string
	what string
	pos  Pos
}

func (f *fileParser) parseConnectionTypes(e yamlEntry) {
	es, _ := f.mappingDup(e.val, "connection_types", true)
	for _, te := range es {
		if !f.defName(te, "connection type") {
			continue
		}
		ct := &ConnectionType{Name: te.key, Pos: f.pos(te.kn)}
		props, _ := f.mappingDup(te.val, "connection type "+te.key, false)
		for _, pe := range props {
			pe.path = "connection type " + te.key + ", property " + pe.key
			fd := f.parseField(pe)
			if fd == nil {
				continue
			}
			if !slices.Contains(connectionPropertyTypes, fd.Type) {
				f.errorf(pe.kn, "%s: type %q is not allowed for a connection property; want string, text, integer, number, boolean, date or datetime", pe.path, fd.Type)
			}
			ct.Fields = append(ct.Fields, fd)
		}
		f.l.connTypes = append(f.l.connTypes, ct)
	}
}

func (f *fileParser) parseConnections(e yamlEntry) {
	es, _ := f.mappingDup(e.val, "connections", true)
	for _, ce := range es {
		if !f.defName(ce, "connection") {
			continue
		}
		what := "connection " + ce.key
		v, ok := f.value(ce.val, what)
		m, isMap := v.(map[string]any)
		if !ok || !isMap {
			if ok {
				f.errorf(ce.val, "%s must be a mapping of values", what)
			}
			continue
		}
		f.checkRefs(ce.val, what)
		f.templates(ce.val, what)
		c := &Connection{Name: ce.key, Values: m, Pos: f.pos(ce.kn)}
		if t, ok := m["type"]; ok {
			s, isStr := t.(string)
			if !isStr || s == "" {
				f.errorf(ce.val, "%s: type must be the name of a connection type", what)
			}
			c.Type = s
			delete(m, "type")
		}
		f.l.conns = append(f.l.conns, c)
	}
}

// linkConnections checks connections against their types, applies
// defaults, checks that every field type that is not built in names a
// connection type, and puts them into ws.
func (l *wsLoader) linkConnections(ws *Workspace) {
	ws.ConnectionTypes = map[string]*ConnectionType{}
	ws.Connections = map[string]*Connection{}
	for _, ct := range l.connTypes {
		if _, dup := ws.ConnectionTypes[ct.Name]; dup {
			l.add(ct.Pos, fmt.Sprintf("connection type %q is defined twice", ct.Name))
			continue
		}
		ws.ConnectionTypes[ct.Name] = ct
	}
	typeNames := slices.Sorted(maps.Keys(ws.ConnectionTypes))
	for _, c := range l.conns {
		what := "connection " + c.Name
		if _, dup := ws.Connections[c.Name]; dup {
			l.add(c.Pos, fmt.Sprintf("%s is defined twice", what))
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(c.Values)) {
			if s, ok := c.Values[k].(string); ok && strings.TrimSpace(s) == "" {
				l.add(c.Pos, fmt.Sprintf("%s: value %q is empty", what, k))
			}
		}
		if c.Type != "" {
			ct := ws.ConnectionTypes[c.Type]
			if ct == nil {
				l.add(c.Pos, fmt.Sprintf("%s: unknown connection type %q%s", what, c.Type, didYouMean(c.Type, typeNames)))
				continue
			}
			for _, fd := range ct.Fields {
				if _, ok := c.Values[fd.Name]; ok {
					if _, problem := checkFieldType(fd.Type, c.Values[fd.Name]); problem != "" && !isReference(c.Values[fd.Name]) {
						l.add(c.Pos, fmt.Sprintf("%s: value %q: %s", what, fd.Name, problem))
					}
					continue
				}
				switch {
				case fd.HasDefault:
					c.Values[fd.Name] = cloneData(fd.Default)
				case fd.Required:
					l.add(c.Pos, fmt.Sprintf("%s: required value %q (connection type %s) is missing", what, fd.Name, c.Type))
				}
			}
			for _, k := range slices.Sorted(maps.Keys(c.Values)) {
				if ct.Fields.Lookup(k) == nil {
					l.warn(c.Pos, fmt.Sprintf("%s: value %q is not a property of connection type %s", what, k, c.Type))
				}
			}
		}
		ws.Connections[c.Name] = c
	}
	for _, r := range l.connRefs {
		if ws.ConnectionTypes[r.typ] != nil {
			continue
		}
		msg := fmt.Sprintf("%s: type: unknown value %q%s; want one of %s", r.what, r.typ,
			didYouMean(r.typ, append(append([]string(nil), fieldTypes...), typeNames...)), strings.Join(fieldTypes, ", "))
		if len(typeNames) > 0 {
			msg += ", or a connection type (" + strings.Join(typeNames, ", ") + ")"
		}
		l.add(r.pos, msg)
	}
}

// isReference reports a value resolved later (a secret reference or a
// template), whose type is only known then.
func isReference(v any) bool {
	s, ok := v.(string)
	return ok && (strings.HasPrefix(s, "ref+") || hasTemplateSyntax(s))
}

// IsConnectionType reports whether a field type names a connection type
// of the workspace.
func (ws *Workspace) IsConnectionType(t FieldType) bool {
	return ws.ConnectionTypes[string(t)] != nil
}

// ResolveConnections replaces, in a copy of in, each connection name given
// for a field whose type is a connection type with that connection's
// values (references resolved like secrets). An object given instead is
// kept as it is. It returns the problems (one sentence each) and the
// resolved values of the connections' secret properties, to be masked.
func (ws *Workspace) ResolveConnections(schema Schema, in map[string]any) (map[string]any, []string, []string) {
	if len(ws.ConnectionTypes) == 0 {
		return in, nil, nil
	}
	out := maps.Clone(in)
	if out == nil {
		out = map[string]any{}
	}
	var problems, secrets []string
	for _, fd := range schema {
		if !ws.IsConnectionType(fd.Type) {
			continue
		}
		v, given := in[fd.Name]
		if !given && fd.HasDefault {
			v = fd.Default // a default names a connection too (upstream: defaults, then connections)
		}
		name, ok := v.(string)
		if !ok {
			continue
		}
		c := ws.Connections[name]
		if c == nil || (c.Type != "" && c.Type != string(fd.Type)) {
			var names []string
			for n, x := range ws.Connections {
				if x.Type == string(fd.Type) || x.Type == "" {
					names = append(names, n)
				}
			}
			sort.Strings(names)
			problems = append(problems, fmt.Sprintf("input %q: no connection %q of type %s (have: %s)", fd.Name, name, fd.Type, strings.Join(names, ", ")))
			continue
		}
		vals, err := ResolveSecrets(c.Values)
		if err != nil {
			problems = append(problems, fmt.Sprintf("input %q: connection %q: %v", fd.Name, name, err))
			continue
		}
		out[fd.Name] = vals
		secrets = append(secrets, ws.connectionSecrets(c, vals)...)
	}
	return out, problems, secrets
}

// connectionSecrets are the resolved values of a connection's secret
// properties.
func (ws *Workspace) connectionSecrets(c *Connection, vals map[string]any) []string {
	ct := ws.ConnectionTypes[c.Type]
	if ct == nil {
		return nil
	}
	var out []string
	for _, fd := range ct.Fields {
		if s, ok := vals[fd.Name].(string); ok && fd.Secret && s != "" {
			out = append(out, s)
		}
	}
	return out
}

// ConnectionSecretRefs are the secret properties of every typed
// connection, as written (references unresolved), by connection: what a
// job's masker must hide besides the secrets.
func (ws *Workspace) ConnectionSecretRefs() map[string]any {
	out := map[string]any{}
	for name, c := range ws.Connections {
		ct := ws.ConnectionTypes[c.Type]
		if ct == nil {
			continue
		}
		m := map[string]any{}
		for _, fd := range ct.Fields {
			if v, ok := c.Values[fd.Name]; ok && fd.Secret {
				m[fd.Name] = v
			}
		}
		if len(m) > 0 {
			out[name] = m
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// ConnectionSet is what a job keeps of a workspace's connections for its
// actions' connection-typed inputs: the connection types those inputs name
// and the connections that fit them, values as written (references are
// resolved when a step's input is). It travels in the job's frozen
// definitions, so a step resolves a name as the workspace was when the job
// was created.
type ConnectionSet struct {
	Types       map[string]*ConnectionType  `json:"types"`
	Connections map[string]FrozenConnection `json:"connections,omitempty"`
}

// FrozenConnection is a Connection's type and values, as written.
type FrozenConnection struct {
	Type   string         `json:"type,omitempty"`
	Values map[string]any `json:"values"`
}

// ConnectionsFor adds to set (nil: a new one) the connection types that
// fields of schema name and the connections of those types (untyped ones
// too), and returns it; nil when schema names none.
func (ws *Workspace) ConnectionsFor(schema Schema, set *ConnectionSet) *ConnectionSet {
	for _, fd := range schema {
		ct := ws.ConnectionTypes[string(fd.Type)]
		if ct == nil {
			continue
		}
		if set == nil {
			set = &ConnectionSet{Types: map[string]*ConnectionType{}, Connections: map[string]FrozenConnection{}}
		}
		set.Types[ct.Name] = ct
		for name, c := range ws.Connections {
			if c.Type == "" || c.Type == ct.Name {
				set.Connections[name] = FrozenConnection{Type: c.Type, Values: c.Values}
			}
		}
	}
	return set
}

// Resolve is Workspace.ResolveConnections over the set.
func (cs *ConnectionSet) Resolve(schema Schema, in map[string]any) (map[string]any, []string, []string) {
	if cs == nil {
		return in, nil, nil
	}
	ws := &Workspace{ConnectionTypes: cs.Types, Connections: make(map[string]*Connection, len(cs.Connections))}
	for name, c := range cs.Connections {
		ws.Connections[name] = &Connection{Name: name, Type: c.Type, Values: c.Values}
	}
	return ws.ResolveConnections(schema, in)
}
