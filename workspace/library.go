package workspace

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"sort"
	"strings"
)

// Libraries (docs/workspaces.md): a library is a set of workflow files
// like a workspace, configured for the whole server. Its actions and tasks
// join every workspace under the prefix "NAME." ("common.notify"); steps
// of a library task that name one of the library's actions are rewritten
// to the prefixed name, other names are left as they are (the workspace's
// own actions). Triggers and secrets of a library are not imported: a
// library action renders with the secrets of the workspace whose job runs
// it. The library's files travel in the workspace's archive under
// _libraries/NAME/, and its actions' script files are run from there;
// inline scripts run in the workspace root like any other.

// LibrariesDir is the folder of a workspace archive that holds the files
// of the libraries, one subfolder per library.
const LibrariesDir = "_libraries"

// Library is a loaded library: its name (the prefix) and its files loaded
// as a workspace.
type Library struct {
	Name string
	WS   *Workspace
	// Err is why the library could not be loaded (it is then left out,
	// and every workspace reports it).
	Err error
	// Refresh, when set, reads the library again (a folder, or a git
	// branch fetched anew); the registry calls it before each workspace
	// load and keeps the last good version when it fails.
	Refresh func(ctx context.Context) (*Workspace, error)
}

// libMerge is what a workspace with libraries was made from.
type libMerge struct {
	base *Workspace
	libs []*Library // loaded ones, sorted by name
}

// WithLibraries returns ws with the libraries merged in (ws itself when
// there are none). A library that failed to load, and a library item whose
// prefixed name the workspace already uses, are problems of the result.
func WithLibraries(ws *Workspace, libs []*Library) *Workspace {
	if ws == nil || len(libs) == 0 {
		return ws
	}
	out := *ws
	out.Actions = make(map[string]*Action, len(ws.Actions))
	out.Tasks = make(map[string]*Task, len(ws.Tasks))
	for k, v := range ws.Actions {
		out.Actions[k] = v
	}
	for k, v := range ws.Tasks {
		out.Tasks[k] = v
	}
	out.Problems = slices.Clone(ws.Problems)
	m := &libMerge{base: ws}
	sorted := slices.Clone(libs)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	h := sha256.New()
	fmt.Fprintf(h, "workspace\x00%s\x00", ws.Revision)
	for _, lib := range sorted {
		where := Pos{File: "library " + lib.Name}
		if lib.Err != nil || lib.WS == nil {
			msg := "library is not available"
			if lib.Err != nil {
				msg = lib.Err.Error()
			}
			out.Problems = append(out.Problems, Problem{Pos: where, Message: fmt.Sprintf("library %s cannot be loaded: %s", lib.Name, msg)})
			continue
		}
		m.libs = append(m.libs, lib)
		fmt.Fprintf(h, "library\x00%s\x00%s\x00", lib.Name, lib.WS.Revision)
		for _, p := range lib.WS.Problems {
			out.Problems = append(out.Problems, Problem{Pos: p.Pos, Message: "library " + lib.Name + ": " + p.Message})
		}
		prefix := lib.Name + "."
		for _, name := range loadSortedKeys(lib.WS.Actions) {
			full := prefix + name
			if _, taken := out.Actions[full]; taken {
				out.Problems = append(out.Problems, Problem{Pos: lib.WS.Actions[name].Pos, Message: fmt.Sprintf("library %s: action %s is also defined by the workspace; the workspace's is used", lib.Name, full)})
				continue
			}
			out.Actions[full] = libraryAction(lib, name)
		}
	}
	// Library tasks last: their steps may name any library's actions or
	// the workspace's own.
	for _, lib := range m.libs {
		for _, name := range loadSortedKeys(lib.WS.Tasks) {
			full := lib.Name + "." + name
			if _, taken := out.Tasks[full]; taken {
				out.Problems = append(out.Problems, Problem{Pos: lib.WS.Tasks[name].Pos, Message: fmt.Sprintf("library %s: task %s is also defined by the workspace; the workspace's is used", lib.Name, full)})
				continue
			}
			t := libraryTask(lib, name)
			ok := true
			for _, sn := range t.Order {
				fs := t.Flow[sn]
				if fs == nil || IsQualified(fs.Action) && out.Actions[fs.Action] == nil {
					continue // another workspace's: checked by RefProblems
				}
				what := fmt.Sprintf("library %s: task %s, step %s: ", lib.Name, name, sn)
				a := out.Actions[fs.Action]
				if a == nil {
					out.Problems = append(out.Problems, Problem{Pos: fs.Pos, Message: what + fmt.Sprintf("unknown action %q: neither the library nor workspace %s has it; the task is left out of this workspace", fs.Action, ws.Name)})
					ok = false
					continue
				}
				if _, local := lib.WS.Actions[strings.TrimPrefix(fs.Action, lib.Name+".")]; local && strings.HasPrefix(fs.Action, lib.Name+".") {
					continue // checked when the library was loaded
				}
				for _, p := range StepInputProblems(fs, a) {
					out.Problems = append(out.Problems, Problem{Pos: fs.Pos, Message: what + p})
					ok = false
				}
			}
			if ok {
				out.Tasks[full] = t
			}
		}
	}
	out.Revision = hex.EncodeToString(h.Sum(nil))
	out.lib = m
	return &out
}

// libraryAction is a library's action as the workspace sees it: prefixed,
// its script file under _libraries/NAME/.
func libraryAction(lib *Library, name string) *Action {
	a := *lib.WS.Actions[name]
	a.Name = lib.Name + "." + name
	dir := LibrariesDir + "/" + lib.Name + "/"
	if a.Source != "" {
		a.Source = path.Join(dir, a.Source)
	}
	if a.Script != "" {
		p, args := SplitScript(a.Script)
		a.Script = path.Join(dir, p)
		if args != "" {
			a.Script += " " + args
		}
	}
	if a.Workdir != "" {
		a.Workdir = path.Join(dir, a.Workdir)
	}
	return &a
}

// libraryTask is a library's task as the workspace sees it: prefixed, its
// steps naming the library's actions by their prefixed names.
func libraryTask(lib *Library, name string) *Task {
	t := *lib.WS.Tasks[name]
	t.Name = lib.Name + "." + name
	t.Flow = make(map[string]*FlowStep, len(lib.WS.Tasks[name].Flow))
	for sn, fs := range lib.WS.Tasks[name].Flow {
		c := *fs
		if _, ok := lib.WS.Actions[c.Action]; ok {
			c.Action = lib.Name + "." + c.Action
		}
		t.Flow[sn] = &c
	}
	return &t
}

// writeLibraryArchive writes the archive of a workspace with libraries:
// the workspace's own files, then each library's under _libraries/NAME/.
func writeLibraryArchive(w io.Writer, ws *Workspace) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	copyPart := func(part *Workspace, prefix string) error {
		var buf bytes.Buffer
		if err := WriteArchive(&buf, part); err != nil {
			return err
		}
		zr, err := gzip.NewReader(&buf)
		if err != nil {
			return err
		}
		tr := tar.NewReader(zr)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if prefix == "" && (hdr.Name == LibrariesDir || strings.HasPrefix(hdr.Name, LibrariesDir+"/")) {
				continue // the libraries' own place
			}
			hdr.Name = prefix + hdr.Name
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if _, err := io.Copy(tw, tr); err != nil {
				return err
			}
		}
	}
	if err := copyPart(ws.lib.base, ""); err != nil {
		return fmt.Errorf("archive workspace %s: %w", ws.Name, err)
	}
	for _, lib := range ws.lib.libs {
		if err := copyPart(lib.WS, LibrariesDir+"/"+lib.Name+"/"); err != nil {
			return fmt.Errorf("archive workspace %s: library %s: %w", ws.Name, lib.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("archive workspace %s: %w", ws.Name, err)
	}
	return gz.Close()
}

// libraryCurrentRevision is currentRevision of a workspace with
// libraries: its own files as they are now, with the libraries it was
// merged with.
func libraryCurrentRevision(ws *Workspace) string {
	base := currentRevision(ws.lib.base)
	h := sha256.New()
	fmt.Fprintf(h, "workspace\x00%s\x00", base)
	for _, lib := range ws.lib.libs {
		fmt.Fprintf(h, "library\x00%s\x00%s\x00", lib.Name, lib.WS.Revision)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// load loads the workspace at path with the registry's libraries, each
// refreshed first when it can be.
func (r *Registry) load(path string) (*Workspace, error) {
	ws, err := Load(path)
	if err != nil {
		return nil, err
	}
	return WithLibraries(ws, r.currentLibraries()), nil
}

// currentLibraries refreshes the libraries that can be and returns them.
// A refresh that fails keeps the library's last good version (its error is
// logged, and reported while no version was ever good).
func (r *Registry) currentLibraries() []*Library {
	if len(r.libs) == 0 {
		return nil
	}
	r.libMu.Lock()
	defer r.libMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
	defer cancel()
	for i, lib := range r.libs {
		if lib.Refresh == nil {
			continue
		}
		lw, err := lib.Refresh(ctx)
		next := *lib
		switch {
		case err != nil && lib.WS != nil:
			r.log.Error("library refresh failed; keeping its last good version", "library", lib.Name, "err", err)
			continue
		case err != nil:
			next.Err = err
		default:
			if lib.WS != nil && lib.WS.Revision == lw.Revision {
				continue
			}
			next.WS, next.Err = lw, nil
			r.log.Info("library loaded", "library", lib.Name, "revision", short(lw.Revision))
		}
		r.libs[i] = &next
	}
	return slices.Clone(r.libs)
}

// LoadLibrary loads a library's files like Load, except that a step may
// name an action the library does not have: the workspace's own, checked
// when the library is merged into a workspace (WithLibraries).
func LoadLibrary(path string) (*Workspace, error) {
	return load(path, true)
}
