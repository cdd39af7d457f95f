package main

import (
	"fmt"

	"github.com/stroem/stroem"
)

// stepLabel is a step's name in `stroem status`: a loop's instances are
// indented under their loop step ("  deploy[2]").
func stepLabel(s stroem.Step) string {
	if s.Loop != "" {
		return "  " + s.StepName
	}
	return s.StepName
}

// stepStatusText is a step's status in `stroem status`: a skipped step
// says why ("skipped (condition)", "skipped (dependency)"), a loop step how
// many of its instances ended ("pending (3/5 done)", "completed (5
// instances)").
func stepStatusText(s stroem.Step, steps []stroem.Step) string {
	if s.SkipReason != "" {
		return fmt.Sprintf("%s (%s)", s.Status, s.SkipReason)
	}
	if len(s.Instances) == 0 {
		return string(s.Status)
	}
	if s.Status.Terminal() {
		return fmt.Sprintf("%s (%d instances)", s.Status, len(s.Instances))
	}
	done := 0
	for _, st := range steps {
		if st.Loop == s.StepName && st.Status.Terminal() {
			done++
		}
	}
	return fmt.Sprintf("%s (%d/%d done)", s.Status, done, len(s.Instances))
}
