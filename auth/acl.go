package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Methods of authentication an Identity can come from.
const (
	MethodJWT    = "jwt"
	MethodCookie = "cookie"
	MethodAPIKey = "api_key"
	// MethodNone marks the identity of a server without authentication
	// (insecure_no_auth, `stroem dev`): everything is allowed.
	MethodNone = "none"
)

// Identity is who a request acts as.
type Identity struct {
	UserID  string
	Email   string
	IsAdmin bool
	Groups  []string
	// Method is how the request authenticated (MethodJWT, …).
	Method string
	// APIKeyPrefix names the key when Method is MethodAPIKey.
	APIKeyPrefix string
}

// Actor is how a job records who created or cancelled it: the email, with
// the API key's prefix when one was used ("ci@example.com (api key
// strm_a1b)"). It is empty for an unauthenticated server.
func (i Identity) Actor() string {
	switch {
	case i.Method == MethodNone || i.Email == "":
		return ""
	case i.Method == MethodAPIKey:
		return fmt.Sprintf("%s (api key %s)", i.Email, i.APIKeyPrefix)
	}
	return i.Email
}

type identityKey struct{}

// WithIdentity stores id in ctx.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the identity stored by WithIdentity.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// Permission is what a user may do with a task: Deny < View < Run.
type Permission int

// Permissions, ordered so that the highest wins.
const (
	Deny Permission = iota
	View
	Run
)

func (p Permission) String() string {
	switch p {
	case View:
		return "view"
	case Run:
		return "run"
	}
	return "deny"
}

func parsePermission(s string) (Permission, error) {
	switch s {
	case "deny":
		return Deny, nil
	case "view":
		return View, nil
	case "run":
		return Run, nil
	}
	return Deny, fmt.Errorf("%q is not an action (deny, view or run)", s)
}

// ACLConfig is the server's `acl:` section.
type ACLConfig struct {
	// Default applies when no rule matches (default deny).
	Default string    `yaml:"default"`
	Rules   []ACLRule `yaml:"rules"`
}

// ACLRule grants Action on the tasks matching Workspace and Tasks to the
// listed groups and users.
type ACLRule struct {
	Workspace string   `yaml:"workspace"`
	Tasks     []string `yaml:"tasks"`
	Action    string   `yaml:"action"`
	Groups    []string `yaml:"groups"`
	Users     []string `yaml:"users"`
}

// ACL evaluates the rules. The nil *ACL is "no acl section": every
// authenticated user may run everything.
type ACL struct {
	def   Permission
	rules []rule
}

type rule struct {
	workspace string
	tasks     []string
	perm      Permission
	groups    []string
	users     []string
}

// NewACL checks the section and compiles it; nil in, nil out. Every
// problem is reported at once.
func NewACL(c *ACLConfig) (*ACL, error) {
	if c == nil {
		return nil, nil
	}
	var problems []string
	a := &ACL{def: Deny}
	if c.Default != "" {
		p, err := parsePermission(c.Default)
		if err != nil {
			problems = append(problems, "acl.default: "+err.Error())
		}
		a.def = p
	}
	for i, r := range c.Rules {
		key := fmt.Sprintf("acl.rules[%d]", i)
		p, err := parsePermission(r.Action)
		if r.Action == "" {
			err = errors.New("must be set (deny, view or run)")
		}
		if err != nil {
			problems = append(problems, key+".action: "+err.Error())
		}
		if r.Workspace == "" {
			problems = append(problems, key+".workspace: must be set (a name or \"*\")")
		}
		if len(r.Tasks) == 0 {
			problems = append(problems, key+".tasks: must list at least one pattern (\"*\" for all)")
		}
		if len(r.Groups) == 0 && len(r.Users) == 0 {
			problems = append(problems, key+": names no groups and no users, so it never applies")
		}
		users := make([]string, len(r.Users))
		for j, u := range r.Users {
			users[j] = NormalizeEmail(u)
		}
		a.rules = append(a.rules, rule{workspace: r.Workspace, tasks: r.Tasks, perm: p, groups: r.Groups, users: users})
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return a, nil
}

// Enabled reports whether ACL rules are configured.
func (a *ACL) Enabled() bool { return a != nil }

// Check returns what id may do with the task at taskPath ("folder/name" or
// "name") of workspace ws, following the upstream's evaluation: admins
// always run; without an acl section everyone runs; otherwise the highest
// action among the rules matching the workspace, the task and the user (by
// email or group) wins, and acl.default applies when none matches.
func (a *ACL) Check(id Identity, ws, taskPath string) Permission {
	if id.IsAdmin || id.Method == MethodNone || a == nil {
		return Run
	}
	best, matched := Deny, false
	email := NormalizeEmail(id.Email)
	for _, r := range a.rules {
		if !wildcardMatch(r.workspace, ws) || !slices.ContainsFunc(r.tasks, func(p string) bool { return wildcardMatch(p, taskPath) }) {
			continue
		}
		if !slices.Contains(r.users, email) && !slices.ContainsFunc(r.groups, func(g string) bool { return slices.Contains(id.Groups, g) }) {
			continue
		}
		matched = true
		best = max(best, r.perm)
	}
	if !matched {
		return a.def
	}
	return best
}

// wildcardMatch matches s against pattern, where '*' stands for any run of
// characters (slashes included, so "deploy/*" covers a whole folder tree)
// and everything else matches itself.
func wildcardMatch(pattern, s string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == s
	}
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, last)
}
