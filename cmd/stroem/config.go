package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
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
	// WorkerToken authenticates workers (Authorization: Bearer …).
	WorkerToken string `yaml:"worker_token"`
	// Lease is how long a claimed step stays a worker's without a heartbeat.
	Lease time.Duration `yaml:"lease"`
	// MaxBodyBytes bounds every request body.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ShutdownGrace bounds how long SIGTERM waits for in-flight requests.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
}

type dbConfig struct {
	URL string `yaml:"url"`
}

type logStorageConfig struct {
	LocalDir string `yaml:"local_dir"`
}

type workspaceConfig struct {
	Type string `yaml:"type"`
	Path string `yaml:"path"`
}

func defaultServerConfig() serverConfig {
	return serverConfig{
		Listen:        "0.0.0.0:8080",
		DB:            dbConfig{URL: "postgres://stroem:stroem@localhost:5432/stroem"},
		LogStorage:    logStorageConfig{LocalDir: "/var/lib/stroem/logs"},
		Workspaces:    map[string]workspaceConfig{"default": {Type: "folder", Path: "./workspace"}},
		Lease:         10 * time.Second,
		MaxBodyBytes:  10 << 20,
		ShutdownGrace: 30 * time.Second,
	}
}

func (c *serverConfig) validate() error {
	if c.Listen == "" {
		return errors.New("key listen: must not be empty")
	}
	if c.DB.URL == "" {
		return errors.New("key db.url: must not be empty")
	}
	if c.LogStorage.LocalDir == "" {
		return errors.New("key log_storage.local_dir: must not be empty")
	}
	if c.WorkerToken == "" {
		return errors.New("key worker_token: must be set (workers authenticate with it)")
	}
	if len(c.Workspaces) == 0 {
		return errors.New("key workspaces: at least one workspace is needed")
	}
	for name, ws := range c.Workspaces {
		if ws.Type != "folder" && ws.Type != "" {
			return fmt.Errorf("key workspaces.%s.type: %q is not supported (only folder)", name, ws.Type)
		}
		if ws.Path == "" {
			return fmt.Errorf("key workspaces.%s.path: must not be empty", name)
		}
	}
	if c.Lease < time.Second {
		return fmt.Errorf("key lease: %s is too short (at least 1s)", c.Lease)
	}
	if c.MaxBodyBytes < 1024 {
		return fmt.Errorf("key max_body_bytes: %d is too small", c.MaxBodyBytes)
	}
	return nil
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
	Tags         []string `yaml:"tags"`
	// ShutdownGrace is how long SIGTERM lets running steps finish before
	// cancelling them.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
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
		return errors.New("key worker_token: must be set (the server's worker_token)")
	}
	if c.MaxConcurrent < 1 {
		return fmt.Errorf("key max_concurrent: %d, want at least 1", c.MaxConcurrent)
	}
	if c.WorkDir == "" {
		return errors.New("key work_dir: must not be empty")
	}
	if len(c.Capabilities) == 0 {
		return errors.New("key capabilities: at least one action type is needed")
	}
	return nil
}

// envPrefix starts every override variable.
const envPrefix = "STROEM__"

// loadConfig fills dst (already holding defaults) from the YAML file at path
// (skipped when path is empty), then from STROEM__… environment variables.
// Unknown keys and wrong types are errors naming the file or variable.
func loadConfig(path string, dst any, environ []string) error {
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("config %s: %w", path, unwrapPathError(err))
		}
		if err := decodeStrict(b, dst); err != nil {
			return fmt.Errorf("config %s: %w", path, err)
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
		doc, err := envDocument(strings.Split(strings.ToLower(strings.TrimPrefix(k, envPrefix)), "__"), overrides[k])
		if err != nil {
			return fmt.Errorf("environment %s: %w", k, err)
		}
		if err := decodeStrict(doc, dst); err != nil {
			return fmt.Errorf("environment %s: %w", k, err)
		}
	}
	return nil
}

// envDocument turns path [db url] and a value into the YAML `db: {url: v}`.
// The value is parsed as YAML, so numbers, booleans, durations and lists
// (`[shell, docker]`) work as they would in the file.
func envDocument(path []string, value string) ([]byte, error) {
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
		node = &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Value: path[i]}, node,
		}}
	}
	return yaml.Marshal(node)
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

// cleanYAMLError turns yaml.v3's multi-line TypeError into one line.
func cleanYAMLError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return errors.New(strings.Join(te.Errors, "; "))
	}
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
