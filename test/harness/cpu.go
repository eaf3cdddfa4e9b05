package harness

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: Linux reports them in clock ticks
// of 1/100 s to user space whatever the kernel's own tick rate.
const userHZ = 100

// APIServerCPU returns the CPU time (user and system, all threads) the control plane's
// kube-apiserver process has used so far, read from /proc, in steps of 10 ms. Benchmarks read
// it before and after a stretch of requests to see what the API server spent on them.
func (cp *ControlPlane) APIServerCPU() (time.Duration, error) {
	if cp.apiServerPID == 0 {
		pid, err := cp.findAPIServer()
		if err != nil {
			return 0, err
		}
		cp.apiServerPID = pid
	}
	return processCPU(cp.apiServerPID)
}

// findAPIServer finds the kube-apiserver process of this control plane: the one whose
// command line names this control plane's admission configuration, a file in its private
// directory.
func (cp *ControlPlane) findAPIServer() (int, error) {
	flag := []byte("--admission-control-config-file=" + filepath.Join(cp.Dir, "admission.yaml"))
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("find kube-apiserver: %w", err)
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for arg := range bytes.SplitSeq(cmdline, []byte{0}) {
			if bytes.Equal(arg, flag) {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("find kube-apiserver: no process has %s", flag)
}

// processCPU reads the user and system CPU time of process pid from /proc/<pid>/stat.
func processCPU(pid int) (time.Duration, error) {
	path := filepath.Join("/proc", strconv.Itoa(pid), "stat")
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces; utime and stime are
	// fields 14 and 15, the 12th and 13th after it.
	stat := string(raw)
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("%s: no command name", path)
	}
	fields := strings.Fields(stat[end+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("%s: %d fields after the command name, want at least 13", path, len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}
