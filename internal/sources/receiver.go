package sources

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/receiver"
)

// Receiver gives the push receiver the sources of one namespace: each GitSource's receiver
// secret (the token key of the Secret its spec.receiver.secretRef names) and sync requests,
// as [RequestSync] makes them. It reads the cluster on every call, so that a rotated Secret
// or a new source takes effect at once; the receiver rate-limits the calls.
type Receiver struct {
	// Sources reads and patches GitSources. Required.
	Sources dynamic.Interface
	// Secrets reads Secrets. Required.
	Secrets kubernetes.Interface
	// Namespace is the Driftless namespace, the only one whose GitSources are reconciled.
	Namespace string
	// Clock makes the request tokens. Nil is the real clock.
	Clock clock.PassiveClock
}

var (
	_ receiver.Secrets   = (*Receiver)(nil)
	_ receiver.Requester = (*Receiver)(nil)
)

// ReceiverSecret returns the receiver secret of the GitSource name; the error wraps
// receiver.ErrUnknownSource when there is no such source, it has no receiver, or its Secret
// or key is missing or empty.
func (r *Receiver) ReceiverSecret(ctx context.Context, name string) ([]byte, error) {
	gs, err := Get(ctx, r.Sources, r.Namespace, name)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("gitsource %s/%s: %w", r.Namespace, name, receiver.ErrUnknownSource)
	}
	if err != nil {
		return nil, err
	}
	if gs.Spec.Receiver == nil {
		return nil, fmt.Errorf("gitsource %s/%s has no spec.receiver: %w", r.Namespace, name, receiver.ErrUnknownSource)
	}
	ref := gs.Spec.Receiver.SecretRef.Name
	s, err := r.Secrets.CoreV1().Secrets(r.Namespace).Get(ctx, ref, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("gitsource %s/%s: receiver secret %s not found: %w", r.Namespace, name, ref, receiver.ErrUnknownSource)
	}
	if err != nil {
		return nil, fmt.Errorf("gitsource %s/%s: read receiver secret %s: %w", r.Namespace, name, ref, err)
	}
	token := s.Data[v1alpha1.SecretKeyReceiverToken]
	if len(token) == 0 {
		return nil, fmt.Errorf("gitsource %s/%s: receiver secret %s has no %q key: %w", r.Namespace, name, ref, v1alpha1.SecretKeyReceiverToken, receiver.ErrUnknownSource)
	}
	return token, nil
}

// RequestSync requests a sync of the GitSource name now.
func (r *Receiver) RequestSync(ctx context.Context, name, _ string) error {
	clk := r.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	_, err := RequestSync(ctx, r.Sources, r.Namespace, name, clk.Now())
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("gitsource %s/%s: %w", r.Namespace, name, receiver.ErrUnknownSource)
	}
	return err
}
