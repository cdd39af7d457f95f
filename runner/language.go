package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/stroem/stroem"
)

// Languages a `type: script` action may be written in (the names the
// server sends in StepSpec.Language).
const (
	langShell      = "shell"
	langPython     = "python"
	langJavaScript = "javascript"
	langTypeScript = "typescript"
	langGo         = "go"
)

// DefaultInstallTimeout bounds installing a step's dependencies when the
// step has no timeout of its own.
const DefaultInstallTimeout = 10 * time.Minute

// stepFilesDir is the folder, inside a step's working directory, that holds
// the files the runner writes for it (the inline code, links to installed
// dependencies). It goes with the directory.
const stepFilesDir = ".stroem-step"

// toolchains lists, per language, the programs that can run it, preferred
// first (as the upstream Strøm picks them).
var toolchains = map[string][]string{
	langShell:      {"bash", "sh"},
	langPython:     {"python3", "python"},
	langJavaScript: {"bun", "node"},
	langTypeScript: {"bun", "deno"},
	langGo:         {"go"},
}

// codeFileNames is the file the inline code is written to, per language.
var codeFileNames = map[string]string{
	langShell:      "script.sh",
	langPython:     "script.py",
	langJavaScript: "script.mjs",
	langTypeScript: "script.ts",
	langGo:         "main.go",
}

// languageCommand builds the process for a step of a `type: script`
// action: its inline code written to a file (or its source file) run by the
// language's interpreter with the step's arguments, after its dependencies
// are installed (once per set, cached under WorkDir).
func (r *ShellRunner) languageCommand(ctx context.Context, step Step, dir string, sink func(stroem.PushLine)) (*exec.Cmd, []string, error) {
	lang := step.Spec.Language
	if _, ok := toolchains[lang]; !ok {
		return nil, nil, fmt.Errorf("unknown language %q (this worker runs shell, python, javascript, typescript and go)", lang)
	}
	prog, err := pickInterpreter(lang, step.Spec.Interpreter)
	if err != nil {
		return nil, nil, err
	}
	var file string
	switch {
	case step.Spec.Code != "":
		name := codeFileNames[lang]
		if lang == langJavaScript && strings.Contains(step.Spec.Code, "require(") && !strings.Contains(step.Spec.Code, "import ") {
			name = "script.cjs" // CommonJS: require() is not defined in a module
		}
		files := filepath.Join(dir, stepFilesDir)
		if err := os.MkdirAll(files, 0o700); err != nil {
			return nil, nil, fmt.Errorf("write the script: %w", err)
		}
		file = filepath.Join(files, name)
		if err := os.WriteFile(file, []byte(step.Spec.Code), 0o600); err != nil {
			return nil, nil, fmt.Errorf("write the script: %w", err)
		}
	case step.Spec.Script != "":
		rel := filepath.FromSlash(step.Spec.Script)
		if !filepath.IsLocal(rel) {
			return nil, nil, fmt.Errorf("source %q is outside the workspace", step.Spec.Script)
		}
		file = filepath.Join(dir, rel)
		fi, err := os.Stat(file)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, nil, fmt.Errorf("source %q not found in the workspace", step.Spec.Script)
			}
			return nil, nil, fmt.Errorf("source %q: %w", step.Spec.Script, err)
		}
		if !fi.Mode().IsRegular() {
			return nil, nil, fmt.Errorf("source %q is not a regular file", step.Spec.Script)
		}
	default:
		return nil, nil, errors.New("nothing to run: the step has neither script nor source")
	}

	var extraEnv []string
	if len(step.Spec.Dependencies) > 0 {
		env, err := r.installDependencies(ctx, step, lang, prog, dir, sink)
		if err != nil {
			return nil, nil, err
		}
		extraEnv = env
	}

	var argv []string
	switch lang {
	case langGo:
		argv = []string{prog, "run", file}
	case langTypeScript:
		if filepath.Base(prog) == "deno" {
			argv = []string{prog, "run", "--allow-all", file}
		} else {
			argv = []string{prog, "run", file}
		}
	case langJavaScript:
		if filepath.Base(prog) == "bun" {
			argv = []string{prog, "run", file}
		} else {
			argv = []string{prog, file}
		}
	default:
		argv = []string{prog, file}
	}
	argv = append(argv, step.Spec.ArgList...)
	cmd := exec.Command(argv[0], argv[1:]...)
	wd, err := workdir(dir, step.Spec.Workdir)
	if err != nil {
		return nil, nil, err
	}
	cmd.Dir = wd
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd, extraEnv, nil
}

// workdir is the step's working directory: dir, or the relative folder
// of it the action names (which must exist in the workspace copy).
func workdir(dir, rel string) (string, error) {
	if rel == "" {
		return dir, nil
	}
	clean := filepath.FromSlash(strings.TrimPrefix(rel, "./"))
	if !filepath.IsLocal(clean) {
		return "", fmt.Errorf("workdir %q is outside the workspace", rel)
	}
	wd := filepath.Join(dir, clean)
	fi, err := os.Stat(wd)
	if err != nil || !fi.IsDir() {
		return "", fmt.Errorf("workdir %q is not a folder of the workspace", rel)
	}
	return wd, nil
}

// pickInterpreter returns the program that runs lang: the action's
// interpreter when it names one, else the first toolchain found on PATH.
func pickInterpreter(lang, override string) (string, error) {
	if override != "" {
		p, err := exec.LookPath(override)
		if err != nil {
			return "", fmt.Errorf("interpreter %q not found on this worker", override)
		}
		return p, nil
	}
	for _, name := range toolchains[lang] {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no %s interpreter on this worker: install one of %s, or set the action's interpreter", lang, strings.Join(toolchains[lang], ", "))
}

// installLocks serialises installs of the same dependency set.
var installLocks sync.Map // key -> *sync.Mutex

// installDependencies installs the step's packages into a folder kept per
// language, interpreter and package set under WorkDir/.deps, once: later
// steps with the same set reuse it. It returns the environment entries that
// make the packages visible to the script. Installer output goes to the
// step's log; a failure (no installer, no network, an unknown package) is
// the step's error, and the install is bounded by the step's timeout (or
// DefaultInstallTimeout).
func (r *ShellRunner) installDependencies(ctx context.Context, step Step, lang, prog, dir string, sink func(stroem.PushLine)) ([]string, error) {
	deps := append([]string(nil), step.Spec.Dependencies...)
	sort.Strings(deps)
	for _, d := range deps {
		if d == "" || strings.HasPrefix(d, "-") {
			return nil, fmt.Errorf("dependency %q is not a package name", d)
		}
	}
	sum := sha256.Sum256([]byte(lang + "\x00" + prog + "\x00" + strings.Join(deps, "\x00")))
	key := lang + "-" + hex.EncodeToString(sum[:8])
	root := filepath.Join(r.WorkDir, ".deps")
	target := filepath.Join(root, key)

	mu, _ := installLocks.LoadOrStore(target, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()

	if _, err := os.Stat(filepath.Join(target, ".complete")); err != nil {
		if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, fmt.Errorf("install dependencies: %w", err)
		}
		tmp, err := os.MkdirTemp(root, key+".tmp-")
		if err != nil {
			return nil, fmt.Errorf("install dependencies: %w", err)
		}
		defer func() { _ = os.RemoveAll(tmp) }()
		argv, err := installCommand(lang, prog, tmp, deps)
		if err != nil {
			return nil, err
		}
		limit := step.Spec.Timeout.D()
		if limit <= 0 {
			limit = DefaultInstallTimeout
		}
		ictx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		sink(stroem.PushLine{TS: time.Now().UTC(), Stream: stroem.Stderr, Text: "installing dependencies: " + strings.Join(deps, " ")})
		if err := r.runInstaller(ictx, argv, dir, step, sink); err != nil {
			if ictx.Err() != nil && ctx.Err() == nil {
				return nil, fmt.Errorf("installing dependencies (%s) timed out after %s", strings.Join(deps, ", "), limit)
			}
			if ctx.Err() != nil {
				return nil, fmt.Errorf("installing dependencies: %s", cancelMessage(context.Cause(ctx)))
			}
			return nil, fmt.Errorf("installing dependencies (%s) failed: %v (the worker needs %s and access to the package registry)", strings.Join(deps, ", "), err, argv[0])
		}
		if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
			return nil, fmt.Errorf("install dependencies: %w", err)
		}
		_ = os.RemoveAll(target)
		if err := os.Rename(tmp, target); err != nil {
			return nil, fmt.Errorf("install dependencies: %w", err)
		}
	}
	switch lang {
	case langPython:
		return []string{"PYTHONPATH=" + target}, nil
	default:
		// Node resolves packages from node_modules next to the script or
		// above it; link the installed folder beside the code.
		nm := filepath.Join(target, "node_modules")
		files := filepath.Join(dir, stepFilesDir)
		if err := os.MkdirAll(files, 0o700); err != nil {
			return nil, fmt.Errorf("install dependencies: %w", err)
		}
		if err := os.Symlink(nm, filepath.Join(files, "node_modules")); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("install dependencies: %w", err)
		}
		return []string{"NODE_PATH=" + nm}, nil
	}
}

// installCommand is the installer for lang's packages into target.
func installCommand(lang, prog, target string, deps []string) ([]string, error) {
	switch lang {
	case langPython:
		if uv, err := exec.LookPath("uv"); err == nil {
			return append([]string{uv, "pip", "install", "--python", prog, "--target", target}, deps...), nil
		}
		return append([]string{prog, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--retries", "1", "--timeout", "15", "--target", target}, deps...), nil
	case langJavaScript, langTypeScript:
		if filepath.Base(prog) == "bun" {
			return append([]string{prog, "add", "--cwd", target}, deps...), nil
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			return nil, fmt.Errorf("installing dependencies needs npm (or bun) on this worker; none was found")
		}
		return append([]string{npm, "install", "--prefix", target, "--no-audit", "--no-fund", "--no-save", "--loglevel", "error"}, deps...), nil
	}
	return nil, fmt.Errorf("dependencies are not supported for %s", lang)
}

// runInstaller runs an installer in its own process group with the step's
// environment, its output going to the step's log, killing the group when
// ctx ends.
func (r *ShellRunner) runInstaller(ctx context.Context, argv []string, dir string, step Step, sink func(stroem.PushLine)) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = r.environment(step)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		closeAll(pr, pw)
		return err
	}
	closeAll(pw)
	readers := newOutputReaders(1)
	go func() {
		defer readers.end()
		_ = splitLines(pr, MaxLineBytes, func(p []byte, _ bool) {
			sink(stroem.PushLine{TS: time.Now().UTC(), Stream: stroem.Stderr, Text: stroem.SanitizeText(string(p))})
		})
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		werr = <-done
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	r.drain(readers, func() (bool, time.Duration) { return false, 0 }, pr)
	if werr == nil && ctx.Err() != nil {
		werr = ctx.Err()
	}
	return werr
}
