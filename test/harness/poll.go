package harness

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Poll calls f until it returns nil or timeout passes, and then returns f's last error. It is
// for waiting on asynchronous effects, never for asserting how long they take.
func Poll(ctx context.Context, timeout time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up after %s: %w", timeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// readyTry bounds one try of WaitReady: a listener that accepts and never answers (not the
// server waited for) must not hold the wait past its minute.
const readyTry = 5 * time.Second

// WaitReady polls url until it answers 200 OK. exited, when not nil, is called first on each
// try and stops the wait with its error once the server is known to have exited.
func WaitReady(ctx context.Context, url string, exited func() error) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var gone error
	err := Poll(ctx, time.Minute, func() error {
		if exited != nil {
			if gone = exited(); gone != nil {
				// Poll would try again until its minute is up.
				stop()
				return gone
			}
		}
		try, cancel := context.WithTimeout(ctx, readyTry)
		defer cancel()
		req, err := http.NewRequestWithContext(try, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	})
	if gone != nil {
		return gone
	}
	return err
}
