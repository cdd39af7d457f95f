package workspace

import (
	"fmt"

	"github.com/stroem/stroem"
)

// Pos is where a YAML node starts: the file (relative to the path given to
// Load when possible), 1-based line and column.
type Pos struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col) }

// Problem is one validation error, printed as "file:line:col: message".
type Problem struct {
	Pos     Pos    `json:"pos"`
	Message string `json:"message"`
}

func (p Problem) String() string { return p.Pos.String() + ": " + p.Message }

// Workspace is a loaded, validated set of workflow definitions. Definitions
// that failed validation are left out (or kept with Problems recorded), so a
// server can serve the valid parts (SPEC §2).
type Workspace struct {
	Name string `json:"name"`
	// Root is the absolute path of the workspace folder (the file's folder when
	// a single file was loaded). Scripts are resolved against it.
	Root string `json:"-"`
	// Revision is a content hash of every file under Root (hex sha256), so a
	// worker can fetch exactly the files a job was created from.
	Revision string              `json:"revision"`
	Actions  map[string]*Action  `json:"actions"`
	Tasks    map[string]*Task    `json:"tasks"`
	Triggers map[string]*Trigger `json:"triggers"`
	// Secrets are the raw values: literals, nested maps, or references
	// ("ref+env://VAR", "ref+file://path") resolved by ResolveSecrets.
	Secrets map[string]any `json:"secrets"`
	// ConnectionTypes and Connections (connection.go).
	ConnectionTypes map[string]*ConnectionType `json:"connection_types,omitempty"`
	Connections     map[string]*Connection     `json:"connections,omitempty"`
	Problems        []Problem                  `json:"problems"`
	// Warnings are forms that still work but have a newer spelling (the
	// upstream Strøm's); they never leave a definition out.
	Warnings []Problem `json:"warnings,omitempty"`
	// Hooks are the workspace-level hooks: fallbacks for top-level jobs
	// of tasks without hooks of their own for that event.
	Hooks *Hooks `json:"hooks,omitempty"`

	// src is where Load read the workspace from: the files its revision
	// and archive cover, and the path a reload reads again.
	src *wsSource
	// lib is set on a workspace with libraries merged in (library.go).
	lib *libMerge
}

// FieldType is the type of an input or output field.
type FieldType string

// Field types (SPEC §2).
const (
	TypeString  FieldType = "string"
	TypeInteger FieldType = "integer"
	TypeNumber  FieldType = "number"
	TypeBoolean FieldType = "boolean"
	TypeArray   FieldType = "array"
	TypeObject  FieldType = "object"
	// TypeText is a multi-line string; TypeDate is "YYYY-MM-DD"; TypeDateTime
	// is an RFC 3339 timestamp. All three hold strings.
	TypeText     FieldType = "text"
	TypeDate     FieldType = "date"
	TypeDateTime FieldType = "datetime"
)

// Field is one declared input (or output) field.
type Field struct {
	Name        string    `json:"name"`
	Type        FieldType `json:"type"`
	Required    bool      `json:"required,omitempty"`
	Default     any       `json:"default,omitempty"`
	HasDefault  bool      `json:"has_default,omitempty"`
	Description string    `json:"description,omitempty"`
	// Enum lists the allowed values (`options` upstream, `enum` here). With
	// AllowCustom, they are suggestions and any value of the type is taken.
	Enum []any `json:"enum,omitempty"`
	// Label is the human-readable name the UI shows (YAML `name`).
	Label       string `json:"label,omitempty"`
	AllowCustom bool   `json:"allow_custom,omitempty"`
	// Multiple: the value is a list of values of Type (with Enum, each one
	// of them).
	Multiple bool `json:"multiple,omitempty"`
	// Secret: the value is masked in the UI and in logs.
	Secret bool `json:"secret,omitempty"`
	// Order places the field in forms (lower first); nil = after those with one.
	Order *int `json:"order,omitempty"`
	Pos   Pos  `json:"-"`
}

// Schema is an ordered list of fields (in YAML order, so forms and help
// text show them as written).
type Schema []*Field

// Lookup returns the field with the name, or nil.
func (s Schema) Lookup(name string) *Field {
	for _, f := range s {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// Action types.
const (
	ActionShell  = "shell"
	ActionDocker = "docker"
	ActionPod    = "pod"
	// ActionTask and ActionApproval run on the server, never on a worker
	// (see hook.go): a child job of another task, a human decision.
	ActionTask     = "task"
	ActionApproval = "approval"
)

// Script languages (`language` of a script action).
const (
	LangShell      = "shell"
	LangPython     = "python"
	LangJavaScript = "javascript"
	LangTypeScript = "typescript"
	LangGo         = "go"
)

// Runners of a script action.
const (
	RunnerLocal  = "local"
	RunnerDocker = "docker"
	RunnerPod    = "pod"
)

// Action is a reusable unit of work: a shell command or a workspace script.
//
// A script action holds exactly one of Inline (code, upstream `script:`),
// Source (a file, upstream `source:`), Cmd (our older inline shell command)
// and Script (our older "path args" form).
type Action struct {
	Name string `json:"name"`
	// Type is the capability a worker needs: shell (local scripts, also
	// YAML `type: script`), docker or pod (also `type: script` with
	// `runner: docker|pod`).
	Type string `json:"type"`
	// Label and Description are for people (YAML `name`, `description`).
	Label       string `json:"label,omitempty"`
	Description string `json:"description,omitempty"`
	Cmd         string `json:"cmd,omitempty"`
	Script      string `json:"script,omitempty"`
	// Inline is the code of the script, a template rendered at claim time.
	Inline string `json:"inline,omitempty"`
	// Source is a file of the workspace run as the script.
	Source string `json:"source,omitempty"`
	// Args are extra command-line arguments, each a template.
	Args []string `json:"args,omitempty"`
	// Language of Inline/Source: shell (default), python, javascript,
	// typescript, go.
	Language     string   `json:"language,omitempty"`
	Interpreter  string   `json:"interpreter,omitempty"`
	Dependencies []string `json:"dependencies,omitempty"`
	// Runner is local (default), docker or pod.
	Runner string   `json:"runner,omitempty"`
	Tags   []string `json:"tags,omitempty"`
	// Workdir is the step's working directory, relative to the workspace
	// copy (local runner).
	Workdir string `json:"workdir,omitempty"`
	// Container settings, kept for docker/pod runners (no worker runs
	// them yet).
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Command    []string          `json:"command,omitempty"`
	Manifest   map[string]any    `json:"manifest,omitempty"`
	Resources  map[string]any    `json:"resources,omitempty"`
	Image      string            `json:"image,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	Input      Schema            `json:"input,omitempty"`
	Output     Schema            `json:"output,omitempty"`
	// Timeout 0 means none.
	Timeout stroem.Duration `json:"timeout,omitempty"`
	Retry   *RetryPolicy    `json:"retry,omitempty"`
	Pos     Pos             `json:"-"`
	// Task is the task a type: task action runs as a child job; Message
	// the template a type: approval action shows the approver.
	Task    string `json:"task,omitempty"`
	Message string `json:"message,omitempty"`
}

// Backoff strategies.
const (
	BackoffFixed       = "fixed"
	BackoffExponential = "exponential"
)

// RetryPolicy says how often a failed step is run again. MaxAttempts counts
// executions in all: 1 means no retry.
//
// YAML takes the upstream names (delay, backoff: fixed|exponential,
// max_delay, jitter: bool) and, with a warning, the older ones (backoff as a
// duration, backoff_strategy, max_backoff, jitter as a fraction). Backoff
// holds the delay before the first retry either way.
type RetryPolicy struct {
	MaxAttempts     int             `json:"max_attempts"`
	Backoff         stroem.Duration `json:"backoff"`
	BackoffStrategy string          `json:"backoff_strategy"` // fixed (default) | exponential
	MaxBackoff      stroem.Duration `json:"max_backoff,omitempty"`
	// Jitter is the fraction (0–1) by which each delay is randomly shortened
	// or lengthened; YAML `true` means 0.2.
	Jitter float64 `json:"jitter,omitempty"`
}

// Task modes.
const (
	ModeDistributed = "distributed"
	ModeLocal       = "local"
)

// Task is a DAG of steps, each running an action.
type Task struct {
	Name        string `json:"name"`
	Label       string `json:"label,omitempty"`
	Mode        string `json:"mode"`
	Description string `json:"description,omitempty"`
	// Folder groups tasks in the UI ("deploy/staging").
	Folder string `json:"folder,omitempty"`
	// Timeout bounds the whole job (0: none); Retry, when set, runs the
	// whole task again as a new job after it failed.
	Timeout stroem.Duration      `json:"timeout,omitempty"`
	Retry   *RetryPolicy         `json:"retry,omitempty"`
	Input   Schema               `json:"input,omitempty"`
	Flow    map[string]*FlowStep `json:"flow"`
	// Order lists the flow's step names in YAML order.
	Order []string `json:"order"`
	Pos   Pos      `json:"-"`
	// Hooks are the task's on_success/on_error/on_cancel/on_suspended.
	Hooks *Hooks `json:"hooks,omitempty"`
}

// FlowStep is one node of a task's flow.
type FlowStep struct {
	Name string `json:"name"`
	// Label and Description are for people (YAML `name`, `description`).
	Label       string   `json:"label,omitempty"`
	Description string   `json:"description,omitempty"`
	Action      string   `json:"action"`
	DependsOn   []string `json:"depends_on,omitempty"`
	// Input values are YAML values; strings among them (at any depth) are
	// templates rendered when the step becomes ready.
	Input map[string]any `json:"input,omitempty"`
	// ContinueOnFailure: the step runs even when a dependency failed, and
	// its own failure does not fail the job.
	ContinueOnFailure bool            `json:"continue_on_failure,omitempty"`
	Timeout           stroem.Duration `json:"timeout,omitempty"`
	Retry             *RetryPolicy    `json:"retry,omitempty"`
	Pos               Pos             `json:"-"`
	// When, ForEach and Sequential: see loop.go.
	When       string `json:"when,omitempty"`
	ForEach    any    `json:"for_each,omitempty"`
	Sequential bool   `json:"sequential,omitempty"`
}

// Trigger types.
const (
	TriggerScheduler = "scheduler"
	TriggerWebhook   = "webhook"
)

// Scheduler concurrency policies: what a tick does while the trigger's
// previous job is still unfinished.
const (
	ConcurrencyAllow          = "allow"
	ConcurrencySkip           = "skip"
	ConcurrencyCancelPrevious = "cancel_previous"
)

// Webhook modes.
const (
	WebhookAsync = "async"
	WebhookSync  = "sync"
)

// Trigger starts a task on a schedule or from a webhook. Fields that do not
// apply to the type are zero.
type Trigger struct {
	Name string `json:"name"`
	// Path is a webhook's URL name (/hooks/{path}): its `name` key, else
	// the trigger's name.
	Path    string         `json:"path,omitempty"`
	Type    string         `json:"type"`
	Task    string         `json:"task"`
	Input   map[string]any `json:"input,omitempty"`
	Enabled bool           `json:"enabled"` // default true
	// Scheduler.
	Cron        string `json:"cron,omitempty"`
	Timezone    string `json:"timezone,omitempty"`    // IANA; default UTC
	Concurrency string `json:"concurrency,omitempty"` // default allow
	// Webhook. Secret may be a literal or a secret reference.
	Secret      string `json:"secret,omitempty"`
	Mode        string `json:"mode,omitempty"`         // default async
	TimeoutSecs int    `json:"timeout_secs,omitempty"` // sync mode; 1–300, default 30
	Pos         Pos    `json:"-"`
}

// Webhook returns the enabled-or-not webhook trigger whose URL name is path
// (its `name` key, else the trigger's name), or nil.
func (ws *Workspace) Webhook(path string) *Trigger {
	for _, t := range ws.Triggers {
		if t.Type == TriggerWebhook && webhookPath(t) == path {
			return t
		}
	}
	return nil
}

func webhookPath(t *Trigger) string {
	if t.Path != "" {
		return t.Path
	}
	return t.Name
}
