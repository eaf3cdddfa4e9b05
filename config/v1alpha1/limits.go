package v1alpha1

import (
	"errors"
	"fmt"
	"strings"
)

// ErrLimitExceeded is returned, wrapped in a [*LimitError], when what a source reads from Git
// or renders is over one of its limits.
var ErrLimitExceeded = errors.New("limit exceeded")

// LimitError says which of a source's limits a fetch or a render is over.
type LimitError struct {
	// Limit names the source's setting, such as "limits.maxFileSize".
	Limit string
	// Msg says what is over it.
	Msg string
}

func (e *LimitError) Error() string { return e.Msg }

// Unwrap makes the error match [ErrLimitExceeded].
func (e *LimitError) Unwrap() error { return ErrLimitExceeded }

// FormatBytes formats n bytes for messages about limits, such as "300 MiB" or "512 B".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, suffix := float64(n), ""
	for _, s := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v, suffix = v/unit, s
		if v < unit {
			break
		}
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0") + " " + suffix
}
