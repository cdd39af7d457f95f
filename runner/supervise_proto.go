package runner

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
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

// The status pipe (fd 4 of the supervisor) carries one line per
// supervisorMsg: "P <pid>" once the step started, "E <quoted error>" when it
// could not start, "D <wait status>" or "D <wait status> <quoted error>"
// when it ended. (JSON lines were 2 % of the worker's CPU per trivial step,
// for two tiny objects: issue 23.)

// appendStatusLine appends m's line, newline included.
func appendStatusLine(b []byte, m supervisorMsg) []byte {
	switch {
	case m.Done:
		b = append(b, "D "...)
		b = strconv.AppendUint(b, uint64(m.Status), 10)
		if m.StartError != "" {
			b = append(b, ' ')
			b = strconv.AppendQuote(b, m.StartError)
		}
	case m.StartError != "":
		b = append(b, "E "...)
		b = strconv.AppendQuote(b, m.StartError)
	default:
		b = append(b, "P "...)
		b = strconv.AppendInt(b, int64(m.PID), 10)
	}
	return append(b, '\n')
}

// parseStatusLine reads a line (without its newline) of appendStatusLine.
func parseStatusLine(line []byte) (supervisorMsg, error) {
	bad := func() (supervisorMsg, error) {
		return supervisorMsg{}, fmt.Errorf("unexpected status line %.80q", line)
	}
	if len(line) < 3 || line[1] != ' ' {
		return bad()
	}
	rest := string(line[2:])
	var m supervisorMsg
	switch line[0] {
	case 'P':
		pid, err := strconv.Atoi(rest)
		if err != nil || pid <= 0 {
			return bad()
		}
		m.PID = pid
	case 'E':
		msg, err := strconv.Unquote(rest)
		if err != nil || msg == "" {
			return bad()
		}
		m.StartError = msg
	case 'D':
		status, quoted, hasErr := strings.Cut(rest, " ")
		ws, err := strconv.ParseUint(status, 10, 32)
		if err != nil {
			return bad()
		}
		m.Done, m.Status = true, uint32(ws)
		if hasErr {
			if m.StartError, err = strconv.Unquote(quoted); err != nil {
				return bad()
			}
		}
	default:
		return bad()
	}
	return m, nil
}

// ctlMsg is one received control message.
type ctlMsg struct {
	kind    byte
	payload []byte
	fds     []int // msgStep: stdout, stderr (the receiver closes them)
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
	if err == nil && oobn != len(oob) {
		err = fmt.Errorf("short write (%d of %d bytes)", n, len(b))
	}
	if err == nil && n < len(b) {
		// A stream socket takes what fits in its buffer (about 200 KiB):
		// the rest follows, the descriptors having gone with the first
		// part; the reader joins the parts.
		_, err = c.Write(b[n:])
	}
	return err
}

// ctlReader parses control messages from a stream whose reads may split or
// join them; received descriptors queue up until their message is complete.
type ctlReader struct {
	// read receives bytes into p and descriptors (SCM_RIGHTS,
	// close-on-exec) into oob.
	read func(p, oob []byte) (n, oobn int, err error)
	buf  []byte // received, not yet parsed
	fds  []int
	// rd and oob are the read buffers, and base the storage buf lives
	// in: kept across messages, so a step costs the supervisor no 64 KiB
	// allocation (and the garbage collections they brought).
	rd, oob, base []byte
}

// connReader reads control messages from c.
func connReader(c *net.UnixConn) *ctlReader {
	return &ctlReader{read: func(p, oob []byte) (int, int, error) {
		n, oobn, _, _, err := c.ReadMsgUnix(p, oob)
		return n, oobn, err
	}}
}

// next returns the next message, reading until one is complete; an error
// (io.EOF: the worker is gone) ends the stream.
func (r *ctlReader) next() (ctlMsg, error) {
	for {
		if m, ok, err := r.parse(); err != nil || ok {
			return m, err
		}
		if err := r.fill(); err != nil {
			return ctlMsg{}, err
		}
	}
}

// parse takes the next complete message out of what was received; ok is
// false when none is complete yet.
func (r *ctlReader) parse() (m ctlMsg, ok bool, err error) {
	if len(r.buf) < 5 {
		return ctlMsg{}, false, nil
	}
	n := binary.BigEndian.Uint32(r.buf[1:5])
	if n > maxSpecBytes {
		return ctlMsg{}, false, fmt.Errorf("control message of %d bytes", n)
	}
	if len(r.buf) < 5+int(n) {
		return ctlMsg{}, false, nil
	}
	m = ctlMsg{kind: r.buf[0], payload: append([]byte(nil), r.buf[5:5+n]...)}
	r.buf = r.buf[5+n:]
	if m.kind == msgStep {
		if len(r.fds) < 2 {
			return ctlMsg{}, false, errors.New("step message without its output files")
		}
		m.fds, r.fds = r.fds[:2:2], r.fds[2:]
	}
	return m, true, nil
}

// fill reads once; an error with nothing read is returned (io.EOF at the
// end of the stream).
func (r *ctlReader) fill() error {
	if r.rd == nil {
		r.rd = make([]byte, 64<<10)
		r.oob = make([]byte, syscall.CmsgSpace(8*4))
	}
	n, oobn, err := r.read(r.rd, r.oob)
	if oobn > 0 {
		msgs, perr := syscall.ParseSocketControlMessage(r.oob[:oobn])
		if perr == nil {
			for _, cm := range msgs {
				fds, ferr := syscall.ParseUnixRights(&cm)
				if ferr == nil {
					r.fds = append(r.fds, fds...)
				}
			}
		}
	}
	// What is left of earlier reads moves to the front of base (a
	// forward copy), then the new bytes follow it.
	r.base = append(append(r.base[:0], r.buf...), r.rd[:n]...)
	r.buf = r.base
	if err != nil && n == 0 {
		return err
	}
	if n == 0 && oobn == 0 {
		return io.EOF
	}
	return nil
}
