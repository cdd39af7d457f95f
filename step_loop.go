package stroem

import (
	"strconv"
	"strings"
)

// SkipReason says why a step was skipped: its own condition, a cascade of
// skipped conditions, an empty loop (all three count as satisfied for the
// step's dependents), or a dependency that failed or was cancelled (its
// dependents are skipped too).
type SkipReason string

// Skip reasons. The orchestrator writes them as the prefix of the skipped
// step's message ("skipped (condition): …"), which is where the API reads
// them back from.
const (
	SkipCondition  SkipReason = "condition"
	SkipCascade    SkipReason = "cascade"
	SkipEmptyLoop  SkipReason = "empty_loop"
	SkipDependency SkipReason = "dependency"
)

// SkipMessage is the message of a step skipped for reason: detail.
func SkipMessage(reason SkipReason, detail string) string {
	return "skipped (" + string(reason) + "): " + detail
}

// SkipReasonOf reads the reason back from a skipped step's message;
// a skipped step whose message has none was skipped for a dependency.
func SkipReasonOf(status StepStatus, msg string) SkipReason {
	if status != StepSkipped {
		return ""
	}
	for _, r := range []SkipReason{SkipCondition, SkipCascade, SkipEmptyLoop} {
		if strings.HasPrefix(msg, "skipped ("+string(r)+")") {
			return r
		}
	}
	return SkipDependency
}

// Satisfies reports whether a skip of this kind lets dependents run (a
// condition that was false is not a failure).
func (r SkipReason) Satisfies() bool {
	return r == SkipCondition || r == SkipCascade || r == SkipEmptyLoop
}

// LoopInstanceName is the name of instance index of the for_each step loop.
func LoopInstanceName(loop string, index int) string {
	return loop + "[" + strconv.Itoa(index) + "]"
}

// ParseLoopInstance splits an instance name ("deploy[2]") into its loop
// step and index; ok is false for any other name. Step names cannot contain
// brackets, so the split is unambiguous.
func ParseLoopInstance(name string) (loop string, index int, ok bool) {
	if !strings.HasSuffix(name, "]") {
		return "", 0, false
	}
	i := strings.LastIndexByte(name, '[')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(name[i+1 : len(name)-1])
	if err != nil || n < 0 || strconv.Itoa(n) != name[i+1:len(name)-1] {
		return "", 0, false
	}
	return name[:i], n, true
}

// InStep reports whether a log line of lineStep is one of step's lines: its
// own, and for a for_each step its instances' ("deploy[2]" is one of
// "deploy"'s), as the log API and stream filter by a step. An empty step
// takes every line. Step names cannot contain brackets, so no other step's
// lines match.
func InStep(lineStep, step string) bool {
	if step == "" || lineStep == step {
		return true
	}
	loop, _, ok := ParseLoopInstance(lineStep)
	return ok && loop == step
}
