package runner

import (
	"os"
	"slices"
	"strconv"
	"strings"
)

// DefaultPath is the step's PATH when the worker has none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// BaseEnvNames are the variables a step gets from the worker's environment
// when the worker has them. Nothing else of the worker's environment reaches
// a step (its token, its config, a cloud credential it was started with):
// step code is untrusted, and anyone who can edit a workflow runs it.
var BaseEnvNames = []string{"PATH", "HOME", "LANG", "TMPDIR"}

// baseEnvDefaults fill in a base variable the worker does not have.
var baseEnvDefaults = map[string]string{"PATH": DefaultPath, "LANG": "C.UTF-8", "TMPDIR": os.TempDir()}

// CheckPassEnv reports a name that may not be passed to steps: the
// worker's own STROEM_* variables (its token, its config file) never are,
// whatever the configuration says.
func CheckPassEnv(names []string) error {
	for _, n := range names {
		switch {
		case n == "" || strings.ContainsAny(n, "=\x00"):
			return &PassEnvError{Name: n, Reason: "not a variable name"}
		case strings.HasPrefix(strings.ToUpper(n), "STROEM"):
			return &PassEnvError{Name: n, Reason: "the worker's STROEM_* variables are never passed to steps"}
		}
	}
	return nil
}

// PassEnvError is a name CheckPassEnv refuses.
type PassEnvError struct{ Name, Reason string }

func (e *PassEnvError) Error() string { return strconv.Quote(e.Name) + ": " + e.Reason }

// environment builds a step's environment from scratch, later entries
// winning: the base (BaseEnvNames and PassEnv, taken from r.Environ or the
// worker's environment), one INPUT_<NAME> per input field, the action's
// rendered env (which holds the secrets the action references), then
// STROEM_JOB_ID, STROEM_STEP and STROEM_ATTEMPT.
func (r *ShellRunner) environment(step Step) []string {
	src := r.Environ
	if src == nil {
		src = os.Environ()
	}
	// Only the names a step may get are looked up (a map of the worker's
	// whole environment per step was 1 % of its CPU, issue 23); the last
	// of duplicates wins, as it did.
	have := make(map[string]string, len(BaseEnvNames)+len(r.PassEnv))
	for _, kv := range src {
		k, v, ok := strings.Cut(kv, "=")
		if ok && (slices.Contains(BaseEnvNames, k) || slices.Contains(r.PassEnv, k)) {
			have[k] = v
		}
	}
	env := make([]string, 0, len(BaseEnvNames)+len(r.PassEnv)+len(step.Input)+len(step.Spec.Env)+3)
	for _, k := range BaseEnvNames {
		if v, ok := have[k]; ok && v != "" {
			env = append(env, k+"="+v)
		} else if d := baseEnvDefaults[k]; d != "" {
			env = append(env, k+"="+d)
		}
	}
	if CheckPassEnv(r.PassEnv) == nil {
		for _, k := range r.PassEnv {
			if v, ok := have[k]; ok {
				env = append(env, k+"="+v)
			}
		}
	}
	for _, k := range sortedKeys(step.Input) {
		env = append(env, InputEnvName(k)+"="+EnvValue(step.Input[k]))
	}
	for _, k := range sortedKeys(step.Spec.Env) {
		env = append(env, k+"="+step.Spec.Env[k])
	}
	return append(env,
		"STROEM_JOB_ID="+step.JobID,
		"STROEM_STEP="+step.Name,
		"STROEM_ATTEMPT="+strconv.Itoa(step.Attempt),
	)
}
