package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
)

func newTriggerCmd() *cobra.Command {
	var workspace string
	var inputs []string
	var wait, follow bool
	var flags *clientFlags
	var pf *prefixFlags
	cmd := &cobra.Command{
		Use:   "trigger TASK",
		Short: "Run a task: create a job, optionally wait for it or follow its logs",
		Long: `Trigger creates a job running TASK and prints its id.

Input is given as a JSON object (--input '{"name": "You"}') and/or as
key=value pairs (-i name=You -i count=3). A value that parses as JSON is
taken as JSON (3 is a number, true a boolean, {"a": 1} an object); anything
else is a string — and where the task declares a field as a string, the
value is always the text as typed (-i version=2 sends "2"). key=value pairs
override the keys of JSON objects. A field that takes several values
(multiple: true) gets a list: -i envs=dev -i envs=prod, or
-i 'envs=["dev","prod"]'.

--wait waits until the job ends and prints its status; --follow streams its
logs live (stdout lines to stdout, stderr lines to stderr), resuming across
reconnects. Both exit with the job's result: 0 completed, 1 failed,
130 cancelled. Ctrl-C while waiting or following detaches: the job goes
on (stroem cancel JOB stops it) and the exit code is 3.`,
		Example: `  stroem trigger hello-world -i name=You --follow
  stroem trigger release -i env=production --follow
  stroem trigger release --input '{"env": "staging"}' --wait
  JOB=$(stroem trigger nightly-report)`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("trigger needs exactly one TASK, got %d arguments (see 'stroem trigger --help')", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			input, raw, err := parseInputs(inputs)
			if err != nil {
				return err
			}
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if len(raw) > 0 {
				// Best effort: when the task cannot be read, Execute reports why.
				if t, err := c.Task(ctx, workspace, args[0]); err == nil {
					keepStrings(input, raw, t.Input)
				}
			}
			id, err := c.Execute(ctx, workspace, args[0], input)
			if err != nil {
				return interrupted(ctx, err)
			}
			switch {
			case follow:
				fmt.Fprintf(cmd.ErrOrStderr(), "job %s\n", id)
				st, err := followLogs(cmd, c, pf, id, "", flags.json())
				if err != nil {
					return detached(ctx, id, err)
				}
				return finish(cmd, c, id, st)
			case wait:
				st, err := c.StreamLogs(ctx, id, client.StreamOptions{}, func(stroem.LogLine) error { return nil })
				if err != nil {
					return detached(ctx, id, err)
				}
				if flags.json() {
					job, err := c.Job(ctx, id)
					if err != nil {
						return interrupted(ctx, err)
					}
					if err := printJSON(cmd.OutOrStdout(), job); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", id, st)
				}
				return finish(cmd, c, id, st)
			}
			if flags.json() {
				return printJSON(cmd.OutOrStdout(), map[string]string{"job_id": id})
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), id)
			return err
		},
	}
	cmd.Flags().StringVarP(&workspace, "workspace", "w", "default", "workspace name")
	cmd.Flags().StringArrayVarP(&inputs, "input", "i", nil, "input: a JSON object, or key=value (repeatable)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the job ends and print its status")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "stream the job's logs until it ends")
	pf = addPrefixFlags(cmd)
	flags = addClientFlags(cmd, true)
	return cmd
}

// finish explains a failed job and maps its status to the exit code.
func finish(cmd *cobra.Command, c *client.Client, id string, st stroem.JobStatus) error {
	if st == stroem.JobFailed {
		printFailedSteps(cmd, c, id)
	}
	return jobResult(id, st)
}

// keepStrings gives string-typed fields the key=value text as typed, so
// -i version=2 is "2" for a string field and 2 for an integer one. A field
// that takes several values (multiple) gets a list: the values of its
// key=value pairs in order, each pair's a JSON list's items or one value.
func keepStrings(input map[string]any, raw map[string][]string, schema []client.InputField) {
	for _, f := range schema {
		texts, ok := raw[f.Name]
		if !ok {
			continue
		}
		text := f.Type == "string" || f.Type == ""
		switch {
		case f.Multiple:
			list := []any{}
			for _, v := range texts {
				if items, ok := inputValue(v).([]any); ok {
					list = append(list, items...)
				} else if text {
					list = append(list, v)
				} else {
					list = append(list, inputValue(v))
				}
			}
			input[f.Name] = list
		case text:
			input[f.Name] = texts[len(texts)-1]
		}
	}
}

// parseInputs merges the --input/-i values: JSON objects first, in order,
// then key=value pairs over them (of a key given twice, the last). raw
// holds each key's key=value texts in order.
func parseInputs(values []string) (input map[string]any, raw map[string][]string, err error) {
	input, raw = map[string]any{}, map[string][]string{}
	var pairs []string
	for _, v := range values {
		if strings.HasPrefix(strings.TrimSpace(v), "{") {
			obj, err := decodeObject(v)
			if err != nil {
				return nil, nil, usageError("--input %s: not a JSON object: %v", v, err)
			}
			for k, x := range obj {
				input[k] = x
			}
			continue
		}
		pairs = append(pairs, v)
	}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, nil, usageError("-i %q: want key=value or a JSON object", p)
		}
		k = strings.TrimSpace(k)
		input[k] = inputValue(v)
		raw[k] = append(raw[k], v)
	}
	return input, raw, nil
}

// inputValue reads v as JSON when it is valid JSON, else as a string.
func inputValue(v string) any {
	dec := json.NewDecoder(strings.NewReader(v))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil || dec.InputOffset() != int64(len(strings.TrimRight(v, " \t"))) {
		return v
	}
	return x
}

func decodeObject(s string) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("unexpected data after the object")
	}
	return obj, nil
}
