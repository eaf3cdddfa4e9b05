package reconciler

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// maxErrors bounds how many errors one message lists.
const maxErrors = 20

// joinErrors joins errs, listing at most maxErrors of them.
func joinErrors(errs []error) error {
	if len(errs) <= maxErrors {
		return errors.Join(errs...)
	}
	return errors.Join(append(errs[:maxErrors:maxErrors], fmt.Errorf("and %d more errors", len(errs)-maxErrors))...)
}

// parallel calls fn for every item with at most n calls at a time and returns the errors of
// all calls, in item order. It stops starting new calls when ctx is done.
func parallel[T any](ctx context.Context, n int, items []T, fn func(context.Context, T) error) []error {
	errs := make([]error, len(items))
	sem := make(chan struct{}, max(n, 1))
	var wg sync.WaitGroup
	for i, it := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errs[i] = ctx.Err()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = fn(ctx, it)
		}()
	}
	wg.Wait()
	var out []error
	for _, err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}
