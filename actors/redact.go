package actors

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/google/uuid"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// API redaction (upstream guides/secrets.md): what the API serves about a
// job never shows a secret in clear. A job's masker is its plan's (every
// resolved secret of the workspace, and unresolved `ref+` references) plus
// the values the job was given for the task's `secret: true` input fields,
// so those are masked wherever they appear: log lines, step inputs and
// outputs, error messages. The fields themselves are redacted by name in
// the job's input whatever their length (the masker leaves out values too
// short to mask as substrings).

// jobRedaction is what a job's redaction needs, cached per job.
type jobRedaction struct {
	masker *stroem.Masker
	// keys are the task's secret input fields.
	keys []string
	// retryOf is the job a task-level retry job retries (shown with the
	// job, as upstream's retry_of_job_id).
	retryOf string
}

// maskCache holds the redaction of recently served jobs (bounded; the
// oldest entry goes first). Its zero value is ready.
type maskCache struct{ boundedCache[*jobRedaction] }

const maskCacheSize = 4096

func (c *maskCache) put(id string, r *jobRedaction) { c.boundedCache.put(id, r, maskCacheSize) }

// secretInputKeys lists the task's `secret: true` input fields.
func secretInputKeys(p *plan) []string {
	if p == nil || p.snap == nil || p.snap.Task == nil {
		return nil
	}
	var keys []string
	for _, f := range p.snap.Task.Input {
		if f.Secret {
			keys = append(keys, f.Name)
		}
	}
	return keys
}

// newJobRedaction builds the redaction of a job with the given input.
func newJobRedaction(p *plan, input map[string]any) *jobRedaction {
	keys := secretInputKeys(p)
	var values []string
	for _, k := range keys {
		values = appendSecretValues(values, input[k])
	}
	m := p.masker
	if len(values) > 0 {
		m = stroem.NewMasker(append(p.masker.Values(), values...))
	}
	return &jobRedaction{masker: m, keys: keys}
}

// appendSecretValues adds the text of a secret input's value (each element
// of a list; a number or boolean as JSON).
func appendSecretValues(out []string, v any) []string {
	switch x := v.(type) {
	case nil:
		return out
	case string:
		return append(out, x)
	case []any:
		for _, e := range x {
			out = appendSecretValues(out, e)
		}
		return out
	}
	if b, err := json.Marshal(v); err == nil {
		out = append(out, string(b))
	}
	return out
}

// createdRedaction is the redaction of a job being created.
func (o *Orchestrator) createdRedaction(p *plan, input map[string]any, r JobRequest) *jobRedaction {
	red := newJobRedaction(p, input)
	if r.retry != nil {
		red.retryOf = r.retry.of
	}
	return red
}

// redaction returns the job's redaction, from the cache or built from the
// stored job.
func (o *Orchestrator) redaction(ctx context.Context, jobID string) (*jobRedaction, error) {
	if r, ok := o.masks.get(jobID); ok {
		return r, nil
	}
	s, err := o.store.JobState(ctx, jobID)
	if err != nil {
		return nil, err
	}
	p, err := o.planFor(ctx, s.SnapshotID)
	if err != nil {
		return nil, err
	}
	if !s.Job.Status.Terminal() {
		o.jobPlans.Store(jobID, p)
	}
	r := newJobRedaction(p, s.Job.Input)
	r.retryOf, _ = s.Context[ctxRetryOf].(string)
	if pid := redactionParent(s); pid != "" && pid != jobID {
		// A child or hook job masks what its parent masks: a parent's
		// secret input reaches it as an ordinary input.
		pr, err := o.redaction(ctx, pid)
		switch {
		case err == nil && pr.masker.Len() > 0:
			r.masker = stroem.NewMasker(append(r.masker.Values(), pr.masker.Values()...))
		case err != nil && !errors.Is(err, stroem.ErrNotFound):
			return nil, err
		}
	}
	o.masks.put(jobID, r)
	return r, nil
}

// redactionParent is the job a child job (of a type: task step) or a hook
// job was started by, "" for other jobs.
func redactionParent(s *persistence.JobState) string {
	if l, ok := parentOf(s); ok {
		return l.JobID
	}
	if h, ok := s.Context["hook"].(map[string]any); ok {
		id, _ := h["job_id"].(string)
		return id
	}
	return ""
}

// derivedJobID reports whether a job id is derived from its parent's (a
// child or hook job: ChildJobID, HookJobID), so the job may carry its
// parent's secrets.
func derivedJobID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && u.Version() == 5
}

// RedactJob masks, in place, every secret in what the API serves about a
// job (see above). An error means the job must not be served.
func (o *Orchestrator) RedactJob(ctx context.Context, j *stroem.Job) error {
	r, err := o.redaction(ctx, j.ID)
	if err != nil {
		return err
	}
	r.masker.MaskJob(j)
	j.RetryOfJobID = r.retryOf
	if len(r.keys) > 0 && j.Input != nil {
		in := make(map[string]any, len(j.Input))
		for k, v := range j.Input {
			in[k] = v
		}
		for _, k := range r.keys {
			if v, ok := in[k]; ok && v != nil {
				in[k] = stroem.MaskText
			}
		}
		if body, ok := in["body"].(map[string]any); ok && j.SourceType == stroem.SourceWebhook {
			// input.body is the webhook's request body as received: the
			// same fields are redacted there.
			b := make(map[string]any, len(body))
			for k, v := range body {
				b[k] = v
			}
			for _, k := range r.keys {
				if v, ok := b[k]; ok && v != nil {
					b[k] = stroem.MaskText
				}
			}
			in["body"] = b
		}
		j.Input = in
	}
	return nil
}
