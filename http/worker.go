package http

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

func (s *Server) workerRegister(w http.ResponseWriter, r *http.Request) {
	var reg stroem.WorkerRegistration
	if err := decodeJSON(r, &reg, false); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if strings.TrimSpace(reg.Name) == "" {
		writeError(w, r, s.log, stroem.Invalid("name is required"))
		return
	}
	if len(reg.Capabilities) == 0 {
		writeError(w, r, s.log, stroem.Invalid("capabilities must list at least one action type"))
		return
	}
	wk, err := s.store.WorkerRegister(r.Context(), reg)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, stroem.WorkerRegistered{
		WorkerID: wk.ID, LeaseMS: s.cfg.Lease.Milliseconds(), HeartbeatMS: (s.cfg.Lease / 5).Milliseconds(),
	})
}

func (s *Server) workerHeartbeat(w http.ResponseWriter, r *http.Request) {
	var hb stroem.Heartbeat
	if err := decodeJSON(r, &hb, false); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if err := checkWorkerID(&hb.WorkerID); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	cancel, err := s.store.LeasesRenew(r.Context(), hb.WorkerID, hb.Running, s.cfg.Lease)
	if err != nil {
		s.orch.StoreFailed(err)
		writeError(w, r, s.log, err)
		return
	}
	s.orch.HeartbeatSeen(hb.WorkerID, hb.Running)
	if !s.orch.LeasesTrusted() {
		// Right after a store outage a lease may have run out only because
		// no heartbeat could be recorded: the server extends the running
		// leases shortly; until then, never tell a worker to stop a step.
		cancel = nil
	}
	if cancel == nil {
		cancel = []stroem.StepRef{}
	}
	writeJSON(w, http.StatusOK, stroem.HeartbeatResponse{Cancel: cancel})
}

func (s *Server) workerClaim(w http.ResponseWriter, r *http.Request) {
	var req stroem.ClaimRequest
	if err := decodeJSON(r, &req, false); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if err := checkWorkerID(&req.WorkerID); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	extendWrite(w, time.Duration(max(req.WaitMS, 0))*time.Millisecond+s.cfg.WriteTimeout)
	a, err := s.orch.Claim(r.Context(), req)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if a == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	b, err := json.Marshal(a)
	if err != nil {
		s.orch.Unassign(a, req.WorkerID)
		writeError(w, r, s.log, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(append(b, '\n')); err != nil {
		// The worker is gone: give the step back rather than wait for the
		// lease to run out.
		s.orch.Unassign(a, req.WorkerID)
	}
}

// stepPath returns the job id and step name of a worker step route.
func stepPath(r *http.Request) (string, string, error) {
	id, err := parseJobID(pathParam(r, "id"))
	if err != nil {
		return "", "", err
	}
	return id, pathParam(r, "step"), nil
}

func (s *Server) workerStart(w http.ResponseWriter, r *http.Request) {
	id, step, err := stepPath(r)
	if err == nil {
		var st stroem.StepStart
		if err = decodeJSON(r, &st, false); err == nil {
			if err = checkWorkerID(&st.WorkerID); err == nil {
				_, err = s.store.StepFence(r.Context(), id, step, st.Attempt, st.WorkerID)
			}
		}
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// workerLogs stores a batch of log lines durably, then publishes them. The
// push is fenced in the store, in the transaction that stores it: only the
// worker holding the current running attempt may add lines.
func (s *Server) workerLogs(w http.ResponseWriter, r *http.Request) {
	id, step, err := stepPath(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	var p stroem.LogPush
	if err := decodeJSON(r, &p, false); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if err := checkWorkerID(&p.WorkerID); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if len(p.Lines) > 0 {
		masker, err := s.orch.Masker(r.Context(), id)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		for i := range p.Lines {
			p.Lines[i].Text = masker.Mask(p.Lines[i].Text)
		}
	}
	stored, err := s.logs.LogAppend(r.Context(), persistence.LogAppend{
		JobID: id, Step: step, Attempt: p.Attempt, WorkerID: p.WorkerID, Offset: p.Offset,
		Lines: p.Lines, MaxStepBytes: s.cfg.MaxStepLogBytes,
	})
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.hub.Publish(id, stored.Lines)
	writeJSON(w, http.StatusOK, stroem.LogPushResponse{Cancel: stored.Cancel, Stored: len(stored.Lines)})
}

func (s *Server) workerComplete(w http.ResponseWriter, r *http.Request) {
	id, step, err := stepPath(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	var c stroem.Completion
	if err := decodeJSON(r, &c, false); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if err := checkWorkerID(&c.WorkerID); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	c.Error = stroem.SanitizeText(c.Error)
	if err := s.orch.StepComplete(r.Context(), id, step, c); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

var revisionRE = regexp.MustCompile(`^[0-9a-f]{8,128}$`)

// workerArchive serves the files of a workspace revision as tar.gz.
func (s *Server) workerArchive(w http.ResponseWriter, r *http.Request) {
	file := pathParam(r, "file")
	rev, ok := strings.CutSuffix(file, ".tar.gz")
	if !ok || !revisionRE.MatchString(rev) {
		writeError(w, r, s.log, stroem.Errorf(stroem.CodeNotFound, "no workspace archive %q (want <revision>.tar.gz)", file))
		return
	}
	b, err := s.store.WorkspaceArchiveGet(r.Context(), rev)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.Header().Set("Content-Type", "application/gzip")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// checkWorkerID checks that *id is a UUID and rewrites it in the canonical
// form the server issued, so a worker that sends it upper-cased or braced is
// still recognised by every fence and lease.
func checkWorkerID(id *string) error {
	if *id == "" {
		return stroem.Invalid("worker_id is required")
	}
	canonical, err := parseJobID(*id)
	if err != nil {
		return stroem.Errorf(stroem.CodeInvalid, "invalid worker_id %q: not a UUID", *id)
	}
	*id = canonical
	return nil
}

func jsonLineEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}
