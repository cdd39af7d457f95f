package runner

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// The control socket between the worker and a supervisor (fd 3 of the
// supervisor, a Unix stream socket) carries messages of one type byte, a
// 4-byte big-endian length and a payload. msgStep's payload is a
// supervisorSpec in JSON; the step's stdout and stderr travel with it as
// SCM_RIGHTS. msgTerm and msgKill have none.
const (
	msgStep = 'S'
	msgTerm = 'T'
	msgKill = 'K'

	maxSpecBytes = 64 << 20
)

// ctlMsg is one received control message.
type ctlMsg struct {
	kind    byte
	payload []byte
	files   []*os.File // msgStep: stdout, stderr
}

// sendCtl writes one control message, with files passed as SCM_RIGHTS.
func sendCtl(c *net.UnixConn, kind byte, payload []byte, files ...*os.File) error {
	b := make([]byte, 5+len(payload))
	b[0] = kind
	binary.BigEndian.PutUint32(b[1:5], uint32(len(payload)))
	copy(b[5:], payload)
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = syscall.UnixRights(fds...)
	}
	n, oobn, err := c.WriteMsgUnix(b, oob, nil)
	if err == nil && (n != len(b) || oobn != len(oob)) {
		err = fmt.Errorf("short write (%d of %d bytes)", n, len(b))
	}
	return err
}

// ctlReader parses control messages from a stream whose reads may split or
// join them; received files queue up until their message is complete.
type ctlReader struct {
	c     *net.UnixConn
	buf   []byte // received, not yet parsed
	files []*os.File
	// rd and oob are the read buffers, and base the storage buf lives
	// in: kept across messages, so a step costs the supervisor no 64 KiB
	// allocation (and the garbage collections they brought).
	rd, oob, base []byte
}

// next returns the next message; an error (io.EOF: the worker is gone) ends
// the stream.
func (r *ctlReader) next() (ctlMsg, error) {
	for {
		if len(r.buf) >= 5 {
			n := binary.BigEndian.Uint32(r.buf[1:5])
			if n > maxSpecBytes {
				return ctlMsg{}, fmt.Errorf("control message of %d bytes", n)
			}
			if len(r.buf) >= 5+int(n) {
				m := ctlMsg{kind: r.buf[0], payload: append([]byte(nil), r.buf[5:5+n]...)}
				r.buf = r.buf[5+n:]
				if m.kind == msgStep {
					if len(r.files) < 2 {
						return ctlMsg{}, errors.New("step message without its output files")
					}
					m.files, r.files = r.files[:2:2], r.files[2:]
				}
				return m, nil
			}
		}
		if r.rd == nil {
			r.rd = make([]byte, 64<<10)
			r.oob = make([]byte, syscall.CmsgSpace(8*4))
		}
		n, oobn, _, _, err := r.c.ReadMsgUnix(r.rd, r.oob)
		if oobn > 0 {
			msgs, perr := syscall.ParseSocketControlMessage(r.oob[:oobn])
			if perr == nil {
				for _, cm := range msgs {
					fds, ferr := syscall.ParseUnixRights(&cm)
					if ferr != nil {
						continue
					}
					for _, fd := range fds {
						r.files = append(r.files, os.NewFile(uintptr(fd), "step output"))
					}
				}
			}
		}
		// What is left of earlier reads moves to the front of base (a
		// forward copy), then the new bytes follow it.
		r.base = append(append(r.base[:0], r.buf...), r.rd[:n]...)
		r.buf = r.base
		if err != nil && n == 0 {
			return ctlMsg{}, err
		}
	}
}
