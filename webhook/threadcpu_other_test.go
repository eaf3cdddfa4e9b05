//go:build !linux

package webhook

import "time"

// threadCPU is not measured outside Linux; the CPU percentiles read 0 there.
func threadCPU() time.Duration { return 0 }

// processCPU is not measured outside Linux; the CPU figures read 0 there.
func processCPU() time.Duration { return 0 }
