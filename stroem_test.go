package stroem

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"
	"unicode/utf8"
)

func TestStepTransitions(t *testing.T) {
	t.Parallel()
	allowed := map[[2]StepStatus]bool{
		{StepPending, StepReady}: true, {StepPending, StepSkipped}: true, {StepPending, StepCancelled}: true,
		{StepPending, StepFailed}: true, {StepPending, StepRunning}: true,
		{StepReady, StepRunning}: true, {StepReady, StepCancelled}: true, {StepReady, StepFailed}: true, {StepReady, StepSkipped}: true,
		{StepRunning, StepCompleted}: true, {StepRunning, StepFailed}: true, {StepRunning, StepCancelled}: true, {StepRunning, StepReady}: true,
		// server-side steps (approval gates, type: task) wait suspended
		{StepPending, StepSuspended}: true, {StepReady, StepSuspended}: true,
		{StepSuspended, StepCompleted}: true, {StepSuspended, StepFailed}: true, {StepSuspended, StepCancelled}: true,
	}
	for _, from := range StepStatuses {
		for _, to := range StepStatuses {
			if got := from.CanTransition(to); got != allowed[[2]StepStatus{from, to}] {
				t.Errorf("%s → %s: CanTransition = %v", from, to, got)
			}
		}
		if from.Terminal() && len(stepTransitions[from]) > 0 {
			t.Errorf("terminal status %s has transitions", from)
		}
	}
	if StepStatus("bogus").Valid() || !StepSkipped.Valid() {
		t.Error("Valid")
	}
}

func TestJobTransitions(t *testing.T) {
	t.Parallel()
	for _, from := range JobStatuses {
		for _, to := range JobStatuses {
			want := !from.Terminal() && to != JobPending && to != JobSkipped && from != to
			if got := from.CanTransition(to); got != want {
				t.Errorf("%s → %s: CanTransition = %v, want %v", from, to, got, want)
			}
		}
	}
	if JobStatus("done").Valid() {
		t.Error("Valid accepted an unknown status")
	}
	if !JobSkipped.Valid() || !JobSkipped.Terminal() {
		t.Error("skipped is a known, terminal status (a job filter takes it; nothing waits for it)")
	}
}

func TestSanitizeText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"plain ✓", "plain ✓"},
		{"nul\x00byte", `nul\0byte`},
		{"bad\xffutf8", "bad\uFFFDutf8"},
		{"\x00\xfe", `\0` + "\uFFFD"},
	} {
		got := SanitizeText(tc.in)
		if got != tc.want || !utf8.ValidString(got) {
			t.Errorf("SanitizeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(Duration(90 * time.Second))
	if err != nil || string(b) != `"1m30s"` {
		t.Fatalf("marshal: %s %v", b, err)
	}
	var d Duration
	if err := json.Unmarshal([]byte(`"250ms"`), &d); err != nil || d.D() != 250*time.Millisecond {
		t.Fatalf("unmarshal string: %v %v", d, err)
	}
	if err := json.Unmarshal([]byte(`1500`), &d); err != nil || d.D() != 1500*time.Millisecond {
		t.Fatalf("unmarshal milliseconds: %v %v", d, err)
	}
	if err := json.Unmarshal([]byte(`"soon"`), &d); err == nil {
		t.Fatal("a bad duration was accepted")
	}
}

func TestErrorCodes(t *testing.T) {
	t.Parallel()
	cause := errors.New("connection refused")
	err := fmt.Errorf("claim: %w", Errorf(CodeUnavailable, "database unavailable: %w", cause))
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) {
		t.Fatal("errors.Is by code")
	}
	if !errors.Is(err, cause) {
		t.Fatal("the cause stays reachable")
	}
	if ErrorCode(err) != CodeUnavailable || ErrorMessage(err) != "database unavailable: connection refused" {
		t.Fatalf("code %s message %q", ErrorCode(err), ErrorMessage(err))
	}
	inv := Invalid("bad input", "a: missing", "b: wrong type")
	if ErrorCode(inv) != CodeInvalid || len(ErrorDetails(inv)) != 2 {
		t.Fatal("Invalid keeps its details")
	}
	if ErrorCode(cause) != CodeInternal || ErrorMessage(cause) != "internal error" {
		t.Fatal("an uncoded error is internal and shows no internals")
	}
}

func TestInStep(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		line, step string
		want       bool
	}{
		{"deploy", "", true},
		{"deploy", "deploy", true},
		{"deploy[0]", "deploy", true},
		{"deploy[12]", "deploy", true},
		{"deploy[1]", "deploy[1]", true},
		{"deploy[1]", "deploy[0]", false},
		{"deployer[0]", "deploy", false},
		{"deploy", "deploy[0]", false},
		{"deploy[x]", "deploy", false},
		{"build", "deploy", false},
	} {
		if got := InStep(c.line, c.step); got != c.want {
			t.Errorf("InStep(%q, %q) = %v, want %v", c.line, c.step, got, c.want)
		}
	}
}

// TestTagsMatch is the upstream's routing table (its migration 042 notes):
// a step's tags must be a subset of the worker's (affinity), and an
// exclusive worker takes only steps that ask for all of its tags.
func TestTagsMatch(t *testing.T) {
	t.Parallel()
	none, claude, gpu := []string{}, []string{"claude"}, []string{"gpu"}
	for _, c := range []struct {
		worker    []string
		exclusive bool
		step      []string
		want      bool
	}{
		{none, false, none, true},
		{none, true, none, true},
		{none, false, claude, false},
		{none, true, claude, false},
		{claude, false, none, true},
		{claude, false, claude, true},
		{claude, true, none, false},
		{claude, true, claude, true},
		{claude, false, gpu, false},
		{[]string{"gpu", "trusted"}, false, gpu, true},
		{[]string{"gpu", "trusted"}, true, gpu, false},
		{[]string{"gpu", "trusted"}, true, []string{"trusted", "gpu"}, true},
		{gpu, true, []string{"gpu", "gpu"}, true},
		{gpu, false, []string{"gpu", "trusted"}, false},
	} {
		if got := TagsMatch(c.step, c.worker, c.exclusive); got != c.want {
			t.Errorf("worker %v exclusive=%v, step %v: TagsMatch = %v, want %v", c.worker, c.exclusive, c.step, got, c.want)
		}
	}
}

func TestTaskSourceID(t *testing.T) {
	t.Parallel()
	const parent = "8b40b005-d457-4363-8d16-816440de1a75"
	for _, tt := range []struct{ sourceID, parent, step string }{
		{TaskSourceID(parent, "cleanup"), parent, "cleanup"},
		{TaskSourceID(parent, LoopInstanceName("fan", 1)), parent, "fan[1]"},
		{TaskSourceID(parent, "a/b"), parent, "a/b"}, // a step name may hold "/", a job id not
		{parent, parent, ""}, // stored before migration 00241
	} {
		p, s := ParseTaskSourceID(tt.sourceID)
		if p != tt.parent || s != tt.step {
			t.Errorf("ParseTaskSourceID(%q) = %q, %q; want %q, %q", tt.sourceID, p, s, tt.parent, tt.step)
		}
	}
	if got := TaskSourceID(parent, "fan[1]"); got != parent+"/fan[1]" {
		t.Errorf("TaskSourceID = %q, want the upstream's parent/step", got)
	}
}
