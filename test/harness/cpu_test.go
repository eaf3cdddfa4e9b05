package harness

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// TestProcessCPUReadsThisProcess reads this process's own CPU time the way APIServerCPU reads
// the API server's: it grows while the test works, and agrees with getrusage to a tick.
func TestProcessCPUReadsThisProcess(t *testing.T) {
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var sink uint64
	deadline := time.Now().Add(30 * time.Second)
	for {
		for i := range 1_000_000 {
			sink += uint64(i) * sink
		}
		now, err := processCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if now-before >= 50*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time read from /proc stayed at %v after 30 s of work", now)
		}
	}
	read, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	rusage := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	// /proc counts whole ticks of 10 ms (user and system each); getrusage was read after it.
	if read > rusage+time.Millisecond || rusage-read > 50*time.Millisecond {
		t.Errorf("/proc says %v of CPU, getrusage %v", read, rusage)
	}
	_ = sink
}

// TestProcessCPUFailsForNoSuchProcess: a process that is not there is an error, not 0 s.
func TestProcessCPUFailsForNoSuchProcess(t *testing.T) {
	if _, err := processCPU(-1); err == nil {
		t.Error("no error for a process that does not exist")
	}
}
