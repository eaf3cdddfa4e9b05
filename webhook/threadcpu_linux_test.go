package webhook

import (
	"syscall"
	"time"
	"unsafe"
)

// Linux's CPU-time clocks: CLOCK_PROCESS_CPUTIME_ID and CLOCK_THREAD_CPUTIME_ID.
const (
	clockProcessCPUTime = 2
	clockThreadCPUTime  = 3
)

// threadCPU returns the CPU time the calling OS thread has used. Callers lock their goroutine
// to its thread (runtime.LockOSThread) so that two readings measure the same thread.
func threadCPU() time.Duration { return cpuClock(clockThreadCPUTime) }

// processCPU returns the CPU time this process has used, all threads.
func processCPU() time.Duration { return cpuClock(clockProcessCPUTime) }

// cpuClock reads one of the CPU-time clocks; 0 if it cannot.
func cpuClock(id uintptr) time.Duration {
	var ts syscall.Timespec
	if _, _, errno := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, id, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0
	}
	return time.Duration(ts.Nano())
}
