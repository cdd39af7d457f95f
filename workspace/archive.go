package workspace

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// ErrRevisionChanged is returned by Archive when the files on disk no longer
// match the workspace's revision: they changed after Load. Reload the
// workspace and archive the new one.
var ErrRevisionChanged = errors.New("workspace files changed since they were loaded")

// archiveTime is the modification time of every archive entry, so the
// same files always give the same bytes.
var archiveTime = time.Unix(0, 0).UTC()

// archiveEntry is one file of a workspace's revision and archive.
type archiveEntry struct {
	rel  string      // slash-separated path relative to the root
	mode fs.FileMode // permission bits; 0777 for a symlink
	link string      // a symlink's target, relative to the link's folder; "" for a regular file
}

// revision lists the files of the workspace, reports the ones left out and
// sets ws.Revision: the hex sha256 over every entry's path, mode and
// content (a symlink's target instead of content).
func (l *wsLoader) revision(ws *Workspace) {
	ws.Revision = l.computeRevision(ws.Actions)
}

// computeRevision lists the entries and hashes them; unreadable files are
// left out with a problem.
func (l *wsLoader) computeRevision(actions map[string]*Action) string {
	h := sha256.New()
	for _, e := range l.listEntries(actions) {
		var sum []byte
		if e.link == "" {
			var err error
			if sum, err = hashFile(filepath.Join(l.root, filepath.FromSlash(e.rel))); err != nil {
				l.add(Pos{File: l.display(e.rel)}, fmt.Sprintf("cannot read file: %v; left out of the revision and the archive", err))
				continue
			}
		}
		entryDigest(h, e, sum)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// listEntries lists the files of the revision, sorted by path.
func (l *wsLoader) listEntries(actions map[string]*Action) []archiveEntry {
	if l.src.single {
		return l.singleEntries(actions)
	}
	return l.folderEntries()
}

// singleEntries is what a single-file workspace holds: the file itself and
// the scripts its valid actions run (symlinks followed).
func (l *wsLoader) singleEntries(actions map[string]*Action) []archiveEntry {
	rels := map[string]bool{l.src.file: true}
	for _, a := range actions {
		if a.Source != "" {
			rels[filepath.ToSlash(filepath.Clean(a.Source))] = true
		}
		if a.Script == "" {
			continue
		}
		p, _ := SplitScript(a.Script)
		rels[filepath.ToSlash(filepath.Clean(p))] = true
	}
	var out []archiveEntry
	for _, rel := range loadSortedKeys(rels) {
		info, err := os.Stat(filepath.Join(l.root, filepath.FromSlash(rel)))
		if err != nil || !info.Mode().IsRegular() {
			l.add(Pos{File: l.display(rel)}, "cannot read file; left out of the revision and the archive")
			continue
		}
		out = append(out, archiveEntry{rel: rel, mode: info.Mode().Perm()})
	}
	return out
}

// folderEntries walks the root: every regular file, and every symlink that
// resolves inside the root; .git folders are skipped, and so are sockets,
// pipes and devices.
func (l *wsLoader) folderEntries() []archiveEntry {
	realRoot, err := filepath.EvalSymlinks(l.root)
	if err != nil {
		l.add(Pos{File: l.src.path}, fmt.Sprintf("cannot read the workspace folder: %v", err))
		return nil
	}
	var out []archiveEntry
	_ = filepath.WalkDir(l.root, func(p string, d fs.DirEntry, err error) error {
		rel, rerr := filepath.Rel(l.root, p)
		if rerr != nil {
			return nil
		}
		slash := filepath.ToSlash(rel)
		if err != nil {
			l.add(Pos{File: l.display(slash)}, fmt.Sprintf("cannot read: %v; left out of the revision and the archive", err))
			if d != nil && d.IsDir() && p != l.root {
				return fs.SkipDir
			}
			return nil
		}
		switch {
		case d.IsDir():
			if d.Name() == ".git" && p != l.root {
				return fs.SkipDir
			}
		case d.Type()&fs.ModeSymlink != 0:
			if e, ok := l.symlinkEntry(realRoot, p, rel); ok {
				out = append(out, e)
			}
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				l.add(Pos{File: l.display(slash)}, fmt.Sprintf("cannot read: %v; left out of the revision and the archive", err))
				return nil
			}
			out = append(out, archiveEntry{rel: slash, mode: info.Mode().Perm()})
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	return out
}

// symlinkEntry keeps a symlink whose target resolves inside the root,
// rewritten relative to the link's folder so it works where the archive is
// unpacked.
func (l *wsLoader) symlinkEntry(realRoot, p, rel string) (archiveEntry, bool) {
	shown := l.display(filepath.ToSlash(rel))
	target, _ := os.Readlink(p)
	leaves := func() (archiveEntry, bool) {
		l.add(Pos{File: shown}, fmt.Sprintf("symlink to %q leaves the workspace; left out of the revision and the archive", target))
		return archiveEntry{}, false
	}
	lexical := target
	if !filepath.IsAbs(lexical) {
		lexical = filepath.Join(filepath.Dir(p), target)
	}
	if lexical = filepath.Clean(lexical); !pathWithin(l.root, lexical) && !pathWithin(realRoot, lexical) {
		return leaves()
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		l.add(Pos{File: shown}, fmt.Sprintf("symlink to %q does not resolve (%v); left out of the revision and the archive", target, err))
		return archiveEntry{}, false
	}
	if !pathWithin(realRoot, real) {
		return leaves()
	}
	inRoot, _ := filepath.Rel(realRoot, real)
	rt, err := filepath.Rel(filepath.Dir(rel), inRoot)
	if err != nil {
		l.add(Pos{File: shown}, fmt.Sprintf("symlink to %q cannot be kept: %v", target, err))
		return archiveEntry{}, false
	}
	return archiveEntry{rel: filepath.ToSlash(rel), mode: 0o777, link: filepath.ToSlash(rt)}, true
}

func hashFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// entryDigest adds one entry to the revision hash; sum is the sha256 of a
// regular file's content. Paths hold no NUL byte, so the encoding is
// unambiguous.
func entryDigest(h hash.Hash, e archiveEntry, sum []byte) {
	fmt.Fprintf(h, "%s\x00%04o\x00", e.rel, e.mode)
	if e.link != "" {
		fmt.Fprintf(h, "l\x00%s\x00", e.link)
		return
	}
	h.Write([]byte("f\x00"))
	h.Write(sum)
}

// Archive returns the workspace's files as a tar.gz for workers: the
// entries of its revision that steps may see (see shipFilter: no .git,
// .env*, .stroemignore matches or workflow files) with relative paths, their permission bits and a
// fixed modification time, so the same revision always gives the same
// bytes. It fails with ErrRevisionChanged when the files changed since
// Load.
func Archive(ws *Workspace) ([]byte, error) {
	var buf bytes.Buffer
	if err := WriteArchive(&buf, ws); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteArchive writes the archive of Archive to w. On error, what was
// written is incomplete and must be discarded.
func WriteArchive(w io.Writer, ws *Workspace) error {
	if ws == nil || ws.src == nil {
		return errors.New("archive workspace: it was not loaded from files")
	}
	if ws.lib != nil {
		return writeLibraryArchive(w, ws)
	}
	// List the files again: a file added, removed or chmod-ed since Load
	// must show as a changed revision, not as a stale archive.
	l := &wsLoader{root: ws.Root, src: &wsSource{path: ws.src.path, single: ws.src.single, file: ws.src.file}}
	entries := l.listEntries(ws.Actions)
	single := ""
	if ws.src.single {
		single = ws.src.file
	}
	filter, err := newShipFilter(ws.Root, ws.Actions, single)
	if err != nil {
		return fmt.Errorf("archive workspace %s: %w", ws.Name, err)
	}
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	h := sha256.New()
	for _, e := range entries {
		if !filter.ships(e.rel) {
			// Part of the revision (a change to it is a new revision),
			// never of what workers get.
			var sum []byte
			if e.link == "" {
				if sum, err = hashFile(filepath.Join(ws.Root, filepath.FromSlash(e.rel))); err != nil {
					continue
				}
			}
			entryDigest(h, e, sum)
			continue
		}
		hdr := &tar.Header{
			Name:    e.rel,
			Mode:    int64(e.mode),
			ModTime: archiveTime,
		}
		var data []byte
		if e.link != "" {
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.link
			entryDigest(h, e, nil)
		} else {
			var err error
			data, err = os.ReadFile(filepath.Join(ws.Root, filepath.FromSlash(e.rel)))
			if err != nil {
				continue // left out of the revision too; the final check decides
			}
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(data))
			sum := sha256.Sum256(data)
			entryDigest(h, e, sum[:])
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("archive workspace %s: %s: %w", ws.Name, e.rel, err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("archive workspace %s: %s: %w", ws.Name, e.rel, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("archive workspace %s: %w", ws.Name, err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("archive workspace %s: %w", ws.Name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != ws.Revision {
		return fmt.Errorf("archive workspace %s: %w (revision %s, files now %s)", ws.Name, ErrRevisionChanged, short(ws.Revision), short(got))
	}
	return nil
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// currentRevision computes the revision of the workspace's files as they
// are now, without parsing them: a cheap check whether ws is stale.
func currentRevision(ws *Workspace) string {
	if ws == nil || ws.src == nil {
		return ""
	}
	if ws.lib != nil {
		return libraryCurrentRevision(ws)
	}
	l := &wsLoader{root: ws.Root, src: &wsSource{path: ws.src.path, single: ws.src.single, file: ws.src.file}}
	return l.computeRevision(ws.Actions)
}
