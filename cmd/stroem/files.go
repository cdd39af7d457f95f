package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stroem/stroem/blob"
	"github.com/stroem/stroem/http/client"
)

// `stroem state …` and `stroem artifacts …` (docs/state-artifacts.md).

func newStateCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "state", Short: "Upload, list and download task state and global state"}
	cmd.AddCommand(newStateUploadCmd(), newStateListCmd(), newStateDownloadCmd())
	return cmd
}

type stateTarget struct{ workspace, task string }

func (t *stateTarget) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&t.workspace, "workspace", "w", "default", "workspace name")
	cmd.Flags().StringVarP(&t.task, "task", "t", "", "task name (none: the workspace's global state, admins only)")
}

func newStateUploadCmd() *cobra.Command {
	var (
		flags  *clientFlags
		target stateTarget
		mode   string
		values []string
	)
	cmd := &cobra.Command{
		Use:   "upload [FILE|DIR]...",
		Short: "Store a new state snapshot: the files given (at the root) and --state key=value entries",
		RunE: func(cmd *cobra.Command, args []string) error {
			kv := map[string]string{}
			for _, v := range values {
				k, val, ok := strings.Cut(v, "=")
				if !ok || k == "" {
					return usageError("--state %q: want key=value", v)
				}
				if k == "mode" {
					return usageError("--state mode=…: the key mode is taken by --mode")
				}
				kv[k] = val
			}
			if mode != "replace" && mode != "merge" {
				return usageError("--mode %q: want replace or merge", mode)
			}
			tmp, err := os.CreateTemp("", "stroem-state-*.tar.gz")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name())
			defer tmp.Close()
			tw := blob.NewWriter(tmp)
			for _, a := range args {
				if err := packPath(cmd.Context(), tw, a); err != nil {
					return err
				}
			}
			size, err := tw.Finish(tmp)
			if err != nil {
				return err
			}
			sn, err := request(cmd, flags, func(c *client.Client) (client.StateSnapshot, error) {
				return c.StateUpload(cmd.Context(), target.workspace, target.task, mode, kv, tmp, size)
			})
			if err != nil {
				return err
			}
			if flags.json() {
				return printJSON(cmd.OutOrStdout(), sn)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s %d bytes sha256:%s\n", sn.ID, sn.SizeBytes, sn.SHA256)
			return err
		},
	}
	flags = addClientFlags(cmd, true)
	target.add(cmd)
	cmd.Flags().StringVar(&mode, "mode", "replace", "replace: exactly what is uploaded; merge: over the newest snapshot")
	cmd.Flags().StringArrayVar(&values, "state", nil, "key=value entry of state.json (repeatable)")
	return cmd
}

// packPath adds a file (by its base name) or a directory (recursively,
// under its base name) to a state tarball. It stops when ctx is cancelled
// (Ctrl-C), between files and within one.
func packPath(ctx context.Context, tw *blob.Writer, p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return usageError("%v", err)
	}
	if !st.IsDir() && !st.Mode().IsRegular() {
		// A named pipe would block open(2) for good; a device has no size.
		return usageError("%s: not a regular file or a folder", p)
	}
	base := filepath.Base(filepath.Clean(p))
	if !st.IsDir() {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return tw.Add(base, st.Size(), ctxReader{ctx, f})
	}
	return filepath.WalkDir(p, func(q string, d os.DirEntry, err error) error {
		if err == nil {
			err = ctx.Err()
		}
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(p, q)
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return usageError("%s: not a regular file (links are not uploaded)", q)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f, err := os.Open(q)
		if err != nil {
			return err
		}
		defer f.Close()
		return tw.Add(base+"/"+filepath.ToSlash(rel), info.Size(), ctxReader{ctx, f})
	})
}

// ctxReader is r until ctx is cancelled, then ctx's error.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func newStateListCmd() *cobra.Command {
	var (
		flags  *clientFlags
		target stateTarget
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List a task's state snapshots (or the global state's), newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			list, err := request(cmd, flags, func(c *client.Client) ([]client.StateSnapshot, error) {
				return c.StateList(cmd.Context(), target.workspace, target.task)
			})
			if err != nil {
				return err
			}
			return printList(cmd.OutOrStdout(), flags, list, "ID\tCREATED\tSOURCE\tSIZE\tKEYS", func(sn client.StateSnapshot) string {
				src := sn.Source
				if sn.JobID != "" {
					src += " " + sn.JobID + "/" + sn.StepName
				} else if sn.UploadedBy != "" {
					src += " by " + sn.UploadedBy
				}
				keys := strings.Join(slices.Sorted(maps.Keys(sn.State)), ",")
				return fmt.Sprintf("%s\t%s\t%s\t%d\t%s", sn.ID, sn.CreatedAt.Format("2006-01-02 15:04:05"), src, sn.SizeBytes, keys)
			})
		},
	}
	flags = addClientFlags(cmd, true)
	target.add(cmd)
	return cmd
}

func newStateDownloadCmd() *cobra.Command {
	var (
		flags  *clientFlags
		target stateTarget
		out    string
	)
	cmd := &cobra.Command{
		Use:   "download [SNAPSHOT]",
		Short: "Download a state snapshot (default: the newest) as tar.gz",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError("download takes at most one SNAPSHOT id, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutFile(out); err != nil {
				return err
			}
			id := "latest"
			if len(args) == 1 {
				id = args[0]
			}
			rc, err := request(cmd, flags, func(c *client.Client) (io.ReadCloser, error) {
				return c.StateDownload(cmd.Context(), target.workspace, target.task, id)
			})
			if err != nil {
				return err
			}
			defer rc.Close()
			return writeOut(cmd, out, rc)
		},
	}
	flags = addClientFlags(cmd, false)
	target.add(cmd)
	cmd.Flags().StringVarP(&out, "output-file", "o", "-", "file to write (-: standard output)")
	return cmd
}

func newArtifactsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "artifacts", Short: "List and download the files a job's steps left in $ARTIFACTS_DIR"}
	cmd.AddCommand(newArtifactsListCmd(), newArtifactsDownloadCmd())
	return cmd
}

func newArtifactsListCmd() *cobra.Command {
	var flags *clientFlags
	cmd := &cobra.Command{
		Use:   "list JOB",
		Short: "List a job's artifacts",
		Args:  jobArgs("artifacts list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			list, err := requestJob(cmd, flags, args[0], (*client.Client).Artifacts)
			if err != nil {
				return err
			}
			return printList(cmd.OutOrStdout(), flags, list, "NAME\tSTEP\tSIZE\tTYPE", func(a client.Artifact) string {
				return fmt.Sprintf("%s\t%s\t%d\t%s", a.Name, a.StepName, a.SizeBytes, a.ContentType)
			})
		},
	}
	flags = addClientFlags(cmd, true)
	return cmd
}

func newArtifactsDownloadCmd() *cobra.Command {
	var (
		flags *clientFlags
		out   string
	)
	cmd := &cobra.Command{
		Use:   "download JOB NAME",
		Short: "Download one artifact",
		Args:  jobAndArg("artifacts download", "an artifact NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutFile(out); err != nil {
				return err
			}
			rc, err := requestJob(cmd, flags, args[0], func(c *client.Client, ctx context.Context, id string) (io.ReadCloser, error) {
				return c.ArtifactDownload(ctx, id, args[1])
			})
			if err != nil {
				return err
			}
			defer rc.Close()
			return writeOut(cmd, out, rc)
		},
	}
	flags = addClientFlags(cmd, false)
	cmd.Flags().StringVarP(&out, "output-file", "o", "-", "file to write (-: standard output)")
	return cmd
}

// checkOutFile is the usage check of a download's --output-file, before
// the download: writeOut's errors would name its temporary file.
func checkOutFile(out string) error {
	if out == "-" || out == "" {
		return nil
	}
	if st, err := os.Stat(out); err == nil && st.IsDir() {
		return usageError("--output-file %s is a folder: name a file", out)
	}
	dir := filepath.Dir(out)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return usageError("--output-file %s: folder %s does not exist", out, dir)
	case err != nil:
		return usageError("--output-file %s: %v", out, err)
	case !st.IsDir():
		return usageError("--output-file %s: %s is not a folder", out, dir)
	}
	return nil
}

// writeOut copies a download to a file (written whole, then renamed into
// place, so a cut download leaves no partial file) or standard output.
func writeOut(cmd *cobra.Command, out string, r io.Reader) error {
	if out == "-" || out == "" {
		_, err := io.Copy(cmd.OutOrStdout(), r)
		return interrupted(cmd.Context(), err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return interrupted(cmd.Context(), err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}
