package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// benchSysProcAttr puts a bench subprocess in its own process group and has
// the kernel kill it if the bench dies first.
func benchSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// benchRSS reads the resident set size and its peak (VmRSS, VmHWM) of a
// process from /proc, in MB (2^20 bytes).
func benchRSS(pid int) (rss, peak float64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		fields := strings.Fields(val) // "123456 kB"
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, 0, fmt.Errorf("/proc/%d/status: unexpected %s %q", pid, key, val)
		}
		kb, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status: %s: %w", pid, key, err)
		}
		if key == "VmRSS" {
			rss = kb / 1024
		} else {
			peak = kb / 1024
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status has no VmRSS", pid)
	}
	return rss, peak, nil
}

// benchUserHZ is the unit of the CPU times in /proc (USER_HZ, 100 on every
// Linux architecture Go supports).
const benchUserHZ = 100

// benchProcCPU reads the CPU time a process used (user + system) and the
// CPU time of its children it has waited for (the steps a worker ran).
func benchProcCPU(pid int) (own, children time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may hold spaces; the fields after it
	// start at the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime, stime, cutime, cstime are fields 14–17.
	if len(f) < 15 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	var t [4]int64
	for k := range t {
		if t[k], err = strconv.ParseInt(f[11+k], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	tick := time.Second / benchUserHZ
	return time.Duration(t[0]+t[1]) * tick, time.Duration(t[2]+t[3]) * tick, nil
}

// benchChildrenCPU sums, over the live children of pid (a worker's pooled
// step supervisors), their own CPU time and the CPU time of the children
// they have waited for (the steps' processes). A pooled supervisor outlives
// the steps it runs, so neither figure shows in the worker's own /proc stat
// until it exits.
func benchChildrenCPU(pid int) (own, children time.Duration, err error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, 0, err
	}
	seen := map[int]bool{}
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		if err != nil {
			continue // the thread exited meanwhile
		}
		for _, f := range strings.Fields(string(b)) {
			c, err := strconv.Atoi(f)
			if err != nil || seen[c] {
				continue
			}
			seen[c] = true
			o, ch, err := benchProcCPU(c)
			if err != nil {
				continue // exited meanwhile
			}
			own, children = own+o, children+ch
		}
	}
	return own, children, nil
}

// benchMachineCPU reads the machine's busy and total CPU time from
// /proc/stat, in ticks (busy excludes idle and iowait).
func benchMachineCPU() (busy, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, 0, errors.New("/proc/stat: unexpected format")
	}
	for k, s := range f[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		if k >= 8 { // guest time is already counted in user
			break
		}
		total += v
		if k != 3 && k != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total, nil
}

// benchPGBackendsCPU sums the CPU time of the PostgreSQL backends connected
// to database db (their process title is "postgres: [CLUSTER: ]USER DB HOST
// …").
// Backends that exited are not counted, nor are PostgreSQL's shared
// processes (WAL writer, checkpointer).
func benchPGBackendsCPU(db string) (time.Duration, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !bytes.HasPrefix(cmdline, []byte("postgres: ")) {
			continue
		}
		if !slices.Contains(strings.Fields(string(bytes.TrimRight(cmdline, "\x00"))), db) {
			continue
		}
		own, _, err := benchProcCPU(pid)
		if err != nil {
			continue // exited meanwhile
		}
		sum += own
	}
	return sum, nil
}
