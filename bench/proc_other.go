//go:build !linux

package bench

import (
	"errors"
	"syscall"
	"time"
)

// benchSysProcAttr puts a bench subprocess in its own process group.
func benchSysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// benchRSS needs /proc; elsewhere the RSS figures are not measured.
func benchRSS(int) (rss, peak float64, err error) {
	return 0, 0, errors.New("reading a process's RSS needs Linux /proc")
}

func benchProcCPU(int) (own, children time.Duration, err error) {
	return 0, 0, errors.New("reading a process's CPU time needs Linux /proc")
}

func benchMachineCPU() (busy, total uint64, err error) {
	return 0, 0, errors.New("reading the machine's CPU time needs Linux /proc")
}

func benchPGBackendsCPU(string) (time.Duration, error) {
	return 0, errors.New("reading PostgreSQL's CPU time needs Linux /proc")
}

func benchChildrenCPU(int) (own, children time.Duration, err error) {
	return 0, 0, errors.New("reading a process's children needs Linux /proc")
}
