package logstore

import (
	"errors"
	"io/fs"
	"os"
)

// Delete removes the log of a job (retention: the job itself is gone). The
// job's cached state is forgotten first, so a later read finds no log; an
// open file is closed by its last reader, and on POSIX systems it stays
// readable to that reader. A job without a log is not an error.
func (s *Store) Delete(jobID string) error {
	id, err := canonicalID(jobID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	if st := s.jobs[id]; st != nil {
		s.forgetLocked(st)
		if st.refs == 0 && st.f != nil {
			_ = st.f.Close()
			st.f = nil
		}
	}
	err = os.Remove(s.path(id))
	s.mu.Unlock()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
