package http

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/stroem/stroem"
)

// The worker API: each handler decodes the request, calls the worker
// protocol (actors.Workers, which owns every rule) and encodes the answer.

func (s *Server) workerRegister(w http.ResponseWriter, r *http.Request) error {
	var reg stroem.WorkerRegistration
	if err := decodeJSON(r, &reg, false); err != nil {
		return err
	}
	out, err := s.workers.Register(r.Context(), reg)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) workerHeartbeat(w http.ResponseWriter, r *http.Request) error {
	var hb stroem.Heartbeat
	if err := decodeJSON(r, &hb, false); err != nil {
		return err
	}
	out, err := s.workers.Heartbeat(r.Context(), hb)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// maxClaimWaitMS bounds the wait_ms a claim's write deadline is extended
// by: the orchestrator waits 30 s at most (actors.Config.MaxWait).
const maxClaimWaitMS = 60_000

func (s *Server) workerClaim(w http.ResponseWriter, r *http.Request) error {
	var req stroem.ClaimRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	extendWrite(w, time.Duration(min(max(req.WaitMS, 0), maxClaimWaitMS))*time.Millisecond+s.cfg.WriteTimeout)
	a, err := s.workers.Claim(r.Context(), req)
	if err != nil {
		return err
	}
	if a == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return s.writeAssignment(w, r, a, a, req.WorkerID)
}

// writeAssignment writes v, an answer that hands step a to the worker,
// and gives a back when the answer could not be written: the worker is
// gone, and the step need not wait for its lease (or start timeout).
func (s *Server) writeAssignment(w http.ResponseWriter, r *http.Request, v any, a *stroem.Assignment, workerID string) error {
	buf, err := encodeJSON(v)
	if err != nil {
		s.workers.Unassign(r.Context(), a, workerID)
		return err
	}
	defer putBuffer(buf)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(buf.Bytes()); err != nil {
		s.workers.Unassign(r.Context(), a, workerID)
	}
	return nil
}

// stepPath returns the job id and step name of a worker step route.
func stepPath(r *http.Request) (string, string, error) {
	id, err := parseJobID(pathParam(r, "id"))
	if err != nil {
		return "", "", err
	}
	return id, pathParam(r, "step"), nil
}

// decodeStep reads a worker step route's job id and step name, and the body.
func decodeStep(r *http.Request, body any) (id, step string, err error) {
	if id, step, err = stepPath(r); err != nil {
		return "", "", err
	}
	return id, step, decodeJSON(r, body, false)
}

func (s *Server) workerStart(w http.ResponseWriter, r *http.Request) error {
	var st stroem.StepStart
	id, step, err := decodeStep(r, &st)
	if err != nil {
		return err
	}
	if err := s.workers.Start(r.Context(), id, step, st); err != nil {
		return err
	}
	writeEmpty(w)
	return nil
}

func (s *Server) workerLogs(w http.ResponseWriter, r *http.Request) error {
	var p stroem.LogPush
	id, step, err := decodeStep(r, &p)
	if err != nil {
		return err
	}
	out, err := s.workers.PushLogs(r.Context(), id, step, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) workerComplete(w http.ResponseWriter, r *http.Request) error {
	var c stroem.Completion
	id, step, err := decodeStep(r, &c)
	if err != nil {
		return err
	}
	next, err := s.workers.Complete(r.Context(), id, step, c)
	if err != nil {
		return err
	}
	if next == nil {
		writeEmpty(w) // stroem.CompletionResponse{}
		return nil
	}
	return s.writeAssignment(w, r, stroem.CompletionResponse{Next: next}, next, c.WorkerID)
}

var revisionRE = regexp.MustCompile(`^[0-9a-f]{8,128}$`)

// workerArchive serves the files of a workspace revision as tar.gz.
func (s *Server) workerArchive(w http.ResponseWriter, r *http.Request) error {
	file := pathParam(r, "file")
	rev, ok := strings.CutSuffix(file, ".tar.gz")
	if !ok || !revisionRE.MatchString(rev) {
		return stroem.Errorf(stroem.CodeNotFound, "no workspace archive %q (want <revision>.tar.gz)", file)
	}
	if err := s.workers.ArchiveAllowed(r.Context(), rev); err != nil {
		return err
	}
	b, err := s.store.WorkspaceArchiveGet(r.Context(), rev)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/gzip")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}

func jsonLineEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}
