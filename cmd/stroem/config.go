package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/stroem/stroem/actors"
	"github.com/stroem/stroem/auth"
	stroemhttp "github.com/stroem/stroem/http"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/retention"
	"github.com/stroem/stroem/runner"
	"github.com/stroem/stroem/tracing"
	"github.com/stroem/stroem/workspace"
)

// Configuration files (SPEC §9). Both the server and the worker read a YAML
// file, then let environment variables override any key: STROEM__DB__URL sets
// db.url (a double underscore separates levels). Defaults live in one
// function per struct. A missing or malformed file, an unknown key or a value
// of the wrong type is a one-line error naming the file (or variable) and the
// key, and exit code 2.

// serverConfig is the server's configuration.
type serverConfig struct {
	Listen     string                     `yaml:"listen"`
	DB         dbConfig                   `yaml:"db"`
	LogStorage logStorageConfig           `yaml:"log_storage"`
	Workspaces map[string]workspaceConfig `yaml:"workspaces"`
	// GitCacheDir holds the clones and checkouts of git workspaces.
	GitCacheDir string `yaml:"git_cache_dir"`
	// Libraries are merged into every workspace; GitAuth holds the
	// credentials git libraries name (config_library.go).
	Libraries map[string]libraryConfig `yaml:"libraries"`
	GitAuth   map[string]gitAuthConfig `yaml:"git_auth"`
	// WorkerToken authenticates workers (Authorization: Bearer …).
	WorkerToken string `yaml:"worker_token"`
	// Lease is how long a claimed step stays a worker's without a heartbeat.
	Lease time.Duration `yaml:"lease"`
	// StartTimeout is how long a step handed to a worker waits for the
	// worker's acknowledgement before it is ready again (0: 3 s, at most
	// half the lease).
	StartTimeout time.Duration `yaml:"start_timeout"`
	// MaxBodyBytes bounds every request body.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ShutdownGrace bounds how long SIGTERM waits for in-flight requests.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// DefaultStepTimeout bounds each attempt of a step whose action and
	// step set no timeout (at most 24h); 0: none.
	DefaultStepTimeout time.Duration `yaml:"default_step_timeout"`
	// DefaultJobTimeout bounds a job whose task sets no timeout, from its
	// creation (at most 7d); 0: none.
	DefaultJobTimeout time.Duration `yaml:"default_job_timeout"`
	// Recovery holds the upstream's recovery: keys this server reads.
	Recovery recoveryConfig `yaml:"recovery"`
	// Auth turns on authentication (the upstream's auth: section); ACL
	// restricts tasks per user and group (acl:). See docs/auth.md.
	Auth *auth.Config    `yaml:"auth"`
	ACL  *auth.ACLConfig `yaml:"acl"`
	// InsecureNoAuth lets a server without an auth: section listen on a
	// non-loopback address: anyone who reaches the port can then run any
	// task. Off by default.
	InsecureNoAuth bool `yaml:"insecure_no_auth"`
	// HTTP holds the HTTP server's timeouts.
	HTTP     httpConfig     `yaml:"http"`
	Webhooks webhooksConfig `yaml:"webhooks"`
	// Operations (docs/operations/): /metrics access, retention, tracing.
	Metrics   metricsConfig    `yaml:"metrics"`
	Retention retention.Config `yaml:"retention"`
	Tracing   tracing.Config   `yaml:"tracing"`
	// Task state and artifacts (filesconfig.go).
	ArtifactStorage artifactStorageConfig `yaml:"artifact_storage"`
	StateStorage    stateStorageConfig    `yaml:"state_storage"`
}

// httpConfig is the HTTP server's timeouts (docs/operations.md).
type httpConfig struct {
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	// MaxConnections caps the open connections; one more is answered 503.
	MaxConnections int `yaml:"max_connections"`
}

type webhooksConfig struct {
	// Headers is the allowlist of request headers a webhook job stores;
	// unset means the built-in list (stroemhttp.DefaultHookHeaders).
	Headers []string `yaml:"headers"`
}

type dbConfig struct {
	URL string `yaml:"url"`
}

type logStorageConfig struct {
	// LocalDir is ignored: logs are stored in the database. Accepted so
	// that older configuration files still load.
	LocalDir string `yaml:"local_dir"`
	// MaxStepBytes bounds the log stored for one step; beyond it a marker
	// line ends the log and the step shows logs_truncated.
	MaxStepBytes int64 `yaml:"max_step_bytes"`
}

type workspaceConfig struct {
	Type string `yaml:"type"`
	Path string `yaml:"path"`
	// The keys of a git workspace (config_git.go).
	gitWorkspaceConfig `yaml:",inline"`
}

func defaultServerConfig() serverConfig {
	return serverConfig{
		Listen:        "0.0.0.0:8080",
		DB:            dbConfig{URL: "postgres://stroem:stroem@localhost:5432/stroem"},
		LogStorage:    logStorageConfig{MaxStepBytes: persistence.DefaultMaxStepLogBytes},
		Workspaces:    map[string]workspaceConfig{"default": {Type: "folder", Path: "./workspace"}},
		GitCacheDir:   "/var/lib/stroem/git",
		Lease:         actors.DefaultLease,
		MaxBodyBytes:  10 << 20,
		ShutdownGrace: 30 * time.Second,
		HTTP: httpConfig{
			ReadHeaderTimeout: stroemhttp.DefaultReadHeaderTimeout,
			ReadTimeout:       stroemhttp.DefaultReadTimeout,
			WriteTimeout:      stroemhttp.DefaultWriteTimeout,
			IdleTimeout:       stroemhttp.DefaultIdleTimeout,
			MaxConnections:    stroemhttp.DefaultMaxConnections,
		},
	}
}

func (c *serverConfig) validate() error {
	if c.Listen == "" {
		return errors.New("key listen: must not be empty")
	}
	if c.DB.URL == "" {
		return errors.New("key db.url: must not be empty")
	}
	if c.LogStorage.MaxStepBytes < 1024 {
		return fmt.Errorf("key log_storage.max_step_bytes: %d is too small (at least 1024)", c.LogStorage.MaxStepBytes)
	}
	if c.WorkerToken == "" {
		return errors.New("key worker_token: must be set, in the config file (worker_token: …) or as STROEM__WORKER_TOKEN; workers authenticate with it (make one with `openssl rand -hex 32`)")
	}
	if len(c.Workspaces) == 0 {
		return errors.New("key workspaces: at least one workspace is needed")
	}
	for name, ws := range c.Workspaces {
		if ws.Type == "git" {
			if err := ws.validateGit(name); err != nil {
				return err
			}
			continue
		}
		if ws.Type != "folder" && ws.Type != "" {
			return fmt.Errorf("key workspaces.%s.type: %q is not supported (folder or git)", name, ws.Type)
		}
		if ws.URL != "" {
			return fmt.Errorf("key workspaces.%s.url: only a git workspace has a url (set type: git)", name)
		}
		if ws.Path == "" {
			return fmt.Errorf("key workspaces.%s.path: must not be empty", name)
		}
	}
	if err := c.validateLibraries(); err != nil {
		return err
	}
	if c.Lease < time.Second {
		return fmt.Errorf("key lease: %s is too short (at least 1s)", c.Lease)
	}
	if c.StartTimeout != 0 && c.StartTimeout < 100*time.Millisecond {
		return fmt.Errorf("key start_timeout: %s is too short (at least 100ms)", c.StartTimeout)
	}
	if c.StartTimeout > c.Lease/2 {
		return fmt.Errorf("key start_timeout: %s must be at most half the lease (%s): an unacknowledged step is given back before its lease runs out", c.StartTimeout, c.Lease)
	}
	if c.MaxBodyBytes < 1024 {
		return fmt.Errorf("key max_body_bytes: %d is too small", c.MaxBodyBytes)
	}
	if c.DefaultStepTimeout < 0 || c.DefaultStepTimeout > workspace.MaxStepTimeout {
		return fmt.Errorf("key default_step_timeout: %s is out of range (0 to 24h)", c.DefaultStepTimeout)
	}
	if err := c.validateLimits(); err != nil {
		return err
	}
	for _, t := range []struct {
		key string
		d   time.Duration
	}{
		{"http.read_header_timeout", c.HTTP.ReadHeaderTimeout}, {"http.read_timeout", c.HTTP.ReadTimeout},
		{"http.write_timeout", c.HTTP.WriteTimeout}, {"http.idle_timeout", c.HTTP.IdleTimeout},
	} {
		if t.d < 100*time.Millisecond {
			return fmt.Errorf("key %s: %s is too short (at least 100ms)", t.key, t.d)
		}
	}
	if c.HTTP.MaxConnections < 1 {
		return fmt.Errorf("key http.max_connections: %d is too small (at least 1)", c.HTTP.MaxConnections)
	}
	if err := stroemhttp.CheckHookHeaders(c.Webhooks.Headers); err != nil {
		return fmt.Errorf("key webhooks.headers: %w", err)
	}
	if err := c.Retention.WithDefaults().Validate(); err != nil {
		return err
	}
	if err := c.Tracing.Validate("tracing"); err != nil {
		return err
	}
	if c.Auth != nil {
		if err := resolveAuthSecrets(c.Auth); err != nil {
			return err
		}
		if err := c.Auth.Validate(); err != nil {
			return err
		}
	}
	if c.ACL != nil {
		if c.Auth == nil {
			return errors.New("key acl: needs an auth: section (ACL rules apply to signed-in users)")
		}
		if _, err := auth.NewACL(c.ACL); err != nil {
			return err
		}
	}
	return checkExposure(c.Listen, c.Auth != nil, c.InsecureNoAuth)
}

// resolveAuthSecrets replaces ref+env:// and ref+file:// references in the
// auth section's secrets by their values, like workspace secrets. Every
// unresolvable one is reported, by key, in one error.
func resolveAuthSecrets(a *auth.Config) error {
	raw := map[string]any{"auth.jwt_secret": a.JWTSecret, "auth.refresh_secret": a.RefreshSecret}
	if a.InitialUser != nil {
		raw["auth.initial_user.password"] = a.InitialUser.Password
	}
	for id, p := range a.Providers {
		raw["auth.providers."+id+".client_secret"] = p.ClientSecret
	}
	out, err := workspace.ResolveSecrets(raw)
	if err != nil {
		return fmt.Errorf("auth secrets: %w", err)
	}
	str := func(k string) string { v, _ := out[k].(string); return v }
	a.JWTSecret, a.RefreshSecret = str("auth.jwt_secret"), str("auth.refresh_secret")
	if a.InitialUser != nil {
		a.InitialUser.Password = str("auth.initial_user.password")
	}
	for id, p := range a.Providers {
		p.ClientSecret = str("auth.providers." + id + ".client_secret")
		a.Providers[id] = p
	}
	return nil
}

// checkExposure refuses a server without authentication on an address
// other machines can reach, unless insecure_no_auth says so.
func checkExposure(listen string, authOn, insecure bool) error {
	if authOn || insecure || loopbackAddr(listen) {
		return nil
	}
	return fmt.Errorf("refusing to listen on %s without authentication: anyone who can reach it could run any task. "+
		"Add an auth: section (jwt_secret, refresh_secret, providers, initial_user; see docs/auth.md), "+
		"or listen on a loopback address (listen: 127.0.0.1:8080), "+
		"or set insecure_no_auth: true (STROEM__INSECURE_NO_AUTH=true) to run an open server on purpose", listen)
}

// loopbackAddr reports whether host:port only accepts local connections.
func loopbackAddr(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// workerConfig is a worker's configuration.
type workerConfig struct {
	ServerURL     string `yaml:"server_url"`
	WorkerToken   string `yaml:"worker_token"`
	WorkerName    string `yaml:"worker_name"`
	MaxConcurrent int    `yaml:"max_concurrent"`
	WorkDir       string `yaml:"work_dir"`
	// Capabilities are the action types this worker runs.
	Capabilities []string `yaml:"capabilities"`
	// Tags are the worker's affinity labels: a step that requires tags
	// runs only on a worker that has all of them. Exclusive reserves the
	// worker for steps that require every one of its tags (the upstream's
	// routing, stroem.TagsMatch).
	Tags      []string `yaml:"tags"`
	Exclusive bool     `yaml:"exclusive"`
	// PassEnv names variables of the worker's environment that steps get
	// besides the base set (PATH, HOME, LANG, TMPDIR); STROEM_* never.
	PassEnv []string `yaml:"pass_env"`
	// ShutdownGrace is how long SIGTERM lets running steps finish before
	// cancelling them.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// LogSpoolBytes bounds each running step's log spool file, used while
	// the server cannot be reached (0: runner.DefaultLogSpoolBytes).
	LogSpoolBytes int64 `yaml:"log_spool_bytes"`
	// MetricsListen, when set, serves the worker's /metrics there
	// (e.g. 127.0.0.1:9101); no token, so bind it to a private address.
	MetricsListen string         `yaml:"metrics_listen"`
	Tracing       tracing.Config `yaml:"tracing"`

	// The upstream's worker keys this worker does not use, accepted so that
	// an upstream worker file starts; each one set is named in a warning
	// (upstreamNotes).
	PollIntervalSecs  int            `yaml:"poll_interval_secs"`
	WorkspaceCacheDir string         `yaml:"workspace_cache_dir"`
	RunnerImage       string         `yaml:"runner_image"`
	Docker            map[string]any `yaml:"docker"`
	Kubernetes        map[string]any `yaml:"kubernetes"`
}

// upstreamCapabilities are the upstream's capability names this worker
// maps: script is its local script runner, shell here; the container and
// agent runners are not in this worker, so it does not claim their steps
// (it would only fail them).
var upstreamCapabilities = map[string]string{"script": workspace.ActionShell, "docker": "", "kubernetes": "", "agent": ""}

// upstreamNotes maps the upstream's capability names and returns a warning
// for each upstream key set that this worker does not use. A worker left
// with no capability it has is an error: one meant for containers only must
// not run scripts on its host instead.
func (c *workerConfig) upstreamNotes() ([]string, error) {
	var notes []string
	caps := make([]string, 0, len(c.Capabilities))
	for _, name := range c.Capabilities {
		to, upstream := upstreamCapabilities[name]
		if !upstream {
			to = name
		}
		switch {
		case to != "":
			if !slices.Contains(caps, to) {
				caps = append(caps, to)
			}
		default:
			notes = append(notes, fmt.Sprintf("capability %q is left out: this worker has no %s runner, so it does not claim such steps", name, name))
		}
	}
	if len(caps) == 0 {
		return nil, fmt.Errorf("key capabilities: this worker runs none of %s (it runs shell steps, the upstream's script; container and agent steps need a worker that has those runners)", strings.Join(c.Capabilities, ", "))
	}
	c.Capabilities = caps
	unused := func(keys, why string) { notes = append(notes, keys+" not used: "+why) }
	if c.PollIntervalSecs != 0 {
		unused("key poll_interval_secs is", "each idle slot long-polls the server, which answers as soon as a step is ready")
	}
	if c.WorkspaceCacheDir != "" {
		unused("key workspace_cache_dir is", "downloaded workspaces are kept under work_dir/workspaces")
	}
	if c.RunnerImage != "" || c.Docker != nil || c.Kubernetes != nil {
		unused("keys runner_image, docker and kubernetes are", "this worker runs steps as local processes only")
	}
	if c.Exclusive && len(c.Tags) == 0 {
		unused("key exclusive is", "the worker has no tags, so it takes only steps that require none, exclusive or not")
	}
	return notes, nil
}

func defaultWorkerConfig() workerConfig {
	host, _ := os.Hostname()
	return workerConfig{
		ServerURL:     "http://localhost:8080",
		WorkerName:    host,
		MaxConcurrent: 4,
		WorkDir:       os.TempDir() + "/stroem-worker",
		Capabilities:  []string{"shell"},
		ShutdownGrace: 30 * time.Second,
	}
}

func (c *workerConfig) validate() error {
	if c.ServerURL == "" {
		return errors.New("key server_url: must not be empty")
	}
	if c.WorkerToken == "" {
		return errors.New("key worker_token: must be set to the server's worker_token, in the config file (worker_token: …) or as STROEM__WORKER_TOKEN")
	}
	if c.MaxConcurrent < 1 {
		return fmt.Errorf("key max_concurrent: %d, want at least 1", c.MaxConcurrent)
	}
	if c.WorkDir == "" {
		return errors.New("key work_dir: must not be empty")
	}
	if c.LogSpoolBytes < 0 {
		return fmt.Errorf("key log_spool_bytes: %d must not be negative", c.LogSpoolBytes)
	}
	if len(c.Capabilities) == 0 {
		return errors.New("key capabilities: at least one action type is needed")
	}
	for i, t := range c.Tags {
		if strings.TrimSpace(t) == "" {
			return fmt.Errorf("key tags: entry %d is empty; a tag is a name such as gpu", i+1)
		}
		if len(t) > 256 {
			return fmt.Errorf("key tags: entry %d is %d bytes long, at most 256", i+1, len(t))
		}
	}
	if len(c.Tags) > 64 {
		return fmt.Errorf("key tags: %d entries, at most 64", len(c.Tags))
	}
	if err := runner.CheckPassEnv(c.PassEnv); err != nil {
		return fmt.Errorf("key pass_env: %w", err)
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			return fmt.Errorf("key metrics_listen: %q is not host:port", c.MetricsListen)
		}
	}
	return c.Tracing.Validate("tracing")
}

// readConfig fills cfg (holding its defaults) from the file at path (or
// STROEM_CONFIG) and the environment, then validates it. Every problem is
// exit code 2, naming the file when there is one.
func readConfig(path string, cfg interface{ validate() error }) error {
	if path == "" {
		path = os.Getenv("STROEM_CONFIG")
	}
	if err := loadConfig(path, cfg, os.Environ()); err != nil {
		return exitCode(2, err)
	}
	if err := cfg.validate(); err != nil {
		if path != "" {
			err = fmt.Errorf("config %s: %w", path, err)
		}
		return exitCode(2, err)
	}
	return nil
}

// envPrefix starts every override variable.
const envPrefix = "STROEM__"

// loadConfig fills dst (already holding defaults) from the YAML file at path
// (skipped when path is empty), then from STROEM__… environment variables.
// Unknown keys and wrong types are errors naming the file or variable.
//
// The file and the overrides are merged as YAML trees first and decoded
// once, so an override inside a map entry (STROEM__WORKSPACES__OPS__TYPE)
// adds to that entry instead of replacing it: yaml.v3 decodes a map value
// into a fresh zero value, which would drop the entry's other keys.
func loadConfig(path string, dst any, environ []string) error {
	merged := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("config %s: %w", path, unwrapPathError(err))
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("config %s: %w", path, cleanYAMLError(err))
		}
		// Checked on its own first, so its errors name the file.
		if err := checkConfigKeys(&doc, dst); err != nil {
			return fmt.Errorf("config %s: %w", path, err)
		}
		if doc.Kind != 0 {
			if b, err = yaml.Marshal(&doc); err != nil {
				return fmt.Errorf("config %s: %w", path, err)
			}
		}
		if err := decodeStrict(b, scratchOf(dst)); err != nil {
			return fmt.Errorf("config %s: %w", path, err)
		}
		if len(doc.Content) > 0 && doc.Content[0].Kind == yaml.MappingNode {
			merged = doc.Content[0]
			resolveConfigPaths(merged, filepath.Dir(absPath(path)))
		}
	}
	overrides := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, envPrefix) || len(k) == len(envPrefix) {
			continue
		}
		overrides[k] = v
	}
	keys := make([]string, 0, len(overrides))
	for k := range overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		node, err := envNode(strings.Split(strings.ToLower(strings.TrimPrefix(k, envPrefix)), "__"), overrides[k])
		if err != nil {
			return fmt.Errorf("environment %s: %w", k, err)
		}
		if err := checkConfigKeys(node, dst); err != nil {
			var ke *configKeyError
			if errors.As(err, &ke) {
				ke.line = 0 // the value's own line, not the user's
			}
			return fmt.Errorf("environment %s: %w", k, err)
		}
		doc, err := yaml.Marshal(node)
		if err != nil {
			return fmt.Errorf("environment %s: %w", k, err)
		}
		if err := decodeStrict(doc, scratchOf(dst)); err != nil {
			return fmt.Errorf("environment %s: %w", k, err)
		}
		mergeMapping(merged, node)
	}
	// Configured workspaces replace the default one rather than join it (a
	// server told to serve ./ops must not also look for ./workspace).
	if c, ok := dst.(*serverConfig); ok && mappingKey(merged, "workspaces") >= 0 {
		c.Workspaces = nil
	}
	b, err := yaml.Marshal(merged)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := decodeStrict(b, dst); err != nil {
		if path != "" {
			return fmt.Errorf("config %s with the environment's overrides: %w", path, err)
		}
		return fmt.Errorf("environment overrides: %w", err)
	}
	return nil
}

// scratchOf returns a new zero value of the type dst points to, for
// checking one source on its own.
func scratchOf(dst any) any {
	return reflect.New(reflect.TypeOf(dst).Elem()).Interface()
}

// mergeMapping sets every key of src into dst (both mapping nodes): a
// mapping merges into a mapping, anything else replaces the value. Keys
// match case-insensitively, as environment variables cannot keep case.
func mergeMapping(dst, src *yaml.Node) {
	for i := 0; i+1 < len(src.Content); i += 2 {
		k, v := src.Content[i], src.Content[i+1]
		j := mappingKey(dst, k.Value)
		if j < 0 {
			dst.Content = append(dst.Content, k, v)
			continue
		}
		cur := dst.Content[j+1]
		if cur.Kind == yaml.AliasNode && cur.Alias != nil {
			// Merge into a copy: the anchor may be used elsewhere.
			c := *cur.Alias
			c.Anchor = ""
			c.Content = append([]*yaml.Node(nil), cur.Alias.Content...)
			cur = &c
			dst.Content[j+1] = cur
		}
		if cur.Kind == yaml.MappingNode && v.Kind == yaml.MappingNode {
			mergeMapping(cur, v)
			continue
		}
		dst.Content[j+1] = v
	}
}

// mappingKey returns the index of key in the mapping n (an exact match
// first, else a case-insensitive one), or -1.
func mappingKey(n *yaml.Node, key string) int {
	fold := -1
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch k := n.Content[i].Value; {
		case k == key:
			return i
		case fold < 0 && strings.EqualFold(k, key):
			fold = i
		}
	}
	return fold
}

// envNode turns path [db url] and a value into the YAML tree `db: {url: v}`.
// The value is parsed as YAML, so numbers, booleans, durations and lists
// (`[shell, docker]`) work as they would in the file.
func envNode(path []string, value string) (*yaml.Node, error) {
	for _, p := range path {
		if p == "" {
			return nil, errors.New("empty key segment (use a double underscore only between keys)")
		}
	}
	var v yaml.Node
	if err := yaml.Unmarshal([]byte(value), &v); err != nil || len(v.Content) == 0 {
		v = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
	} else {
		v = *v.Content[0]
	}
	node := &v
	for i := len(path) - 1; i >= 0; i-- {
		node = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Tag: "!!str", Value: path[i]}, node,
		}}
	}
	return node, nil
}

// decodeStrict decodes YAML into dst, rejecting unknown keys. An empty
// document leaves dst unchanged.
func decodeStrict(b []byte, dst any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return cleanYAMLError(err)
	}
	return nil
}

// cleanYAMLError turns yaml.v3's multi-line TypeError into one line,
// without Go type names.
func cleanYAMLError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			m = goTypeName.ReplaceAllString(m, "")
			m = strings.Replace(m, "field ", "unknown key ", 1)
			msgs[i] = strings.Replace(m, "cannot unmarshal", "cannot read", 1)
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}

// goTypeName matches the Go type yaml.v3 names in its errors.
var goTypeName = regexp.MustCompile(` (not found )?in(to)? (type )?[a-z]+\.[A-Za-z]+`)

// absPath is path made absolute (as given when that fails).
func absPath(path string) string {
	if a, err := filepath.Abs(path); err == nil {
		return a
	}
	return path
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
