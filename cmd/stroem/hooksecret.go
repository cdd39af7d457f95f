package main

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/stroem/stroem/workspace"
)

// webhookSecretWarnings finds the webhook triggers whose secret does not
// resolve here (an unset ref+env:// variable, a missing ref+file://
// file, an empty value): each call of such a webhook would be refused, so
// this is said when the workspace loads, not only per call. The messages
// name the reference, never a value.
func webhookSecretWarnings(ws *workspace.Workspace) []workspace.Problem {
	if ws == nil {
		return nil
	}
	var out []workspace.Problem
	for _, t := range ws.Triggers {
		if t.Type != workspace.TriggerWebhook || t.Secret == "" {
			continue
		}
		resolved, err := workspace.ResolveSecrets(map[string]any{"secret": t.Secret})
		if v, _ := resolved["secret"].(string); err == nil && v == "" {
			err = errors.New("it resolves to an empty value")
		}
		if err != nil {
			path := t.Path
			if path == "" {
				path = t.Name
			}
			out = append(out, workspace.Problem{Pos: t.Pos, Message: fmt.Sprintf(
				"webhook %q: its secret does not resolve (%s); calls of /hooks/%s are refused with 503 until it does",
				t.Name, strings.TrimPrefix(err.Error(), `secret "secret": `), path)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Message < out[j].Message })
	return out
}

// logWebhookSecretWarnings logs webhookSecretWarnings of a loaded workspace.
func logWebhookSecretWarnings(log *slog.Logger, ws *workspace.Workspace) {
	for _, p := range webhookSecretWarnings(ws) {
		log.Warn("workspace: "+p.Message, "workspace", ws.Name, "file", p.Pos.File, "line", p.Pos.Line)
	}
}
