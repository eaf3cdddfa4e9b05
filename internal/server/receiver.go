package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/driftless-dev/driftless/internal/receiver"
	"github.com/driftless-dev/driftless/internal/sources"
)

// receiverServer serves the Git push receiver on every replica: a push becomes a sync
// request on the GitSource, which the elected leader's controller answers.
type receiverServer struct {
	addr    string
	handler http.Handler
	log     logr.Logger
}

var (
	_ manager.Runnable               = (*receiverServer)(nil)
	_ manager.LeaderElectionRunnable = (*receiverServer)(nil)
)

// addReceiver adds the push receiver on addr to the manager; "" or "0" adds none.
func addReceiver(mgr ctrl.Manager, addr, namespace string, clk clock.PassiveClock, log logr.Logger) error {
	if addr == "" || addr == "0" {
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("--receiver-addr %q: %w", addr, err)
	}
	dc, err := dynamic.NewForConfig(mgr.GetConfig())
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	cs, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return fmt.Errorf("clientset: %w", err)
	}
	metrics, err := receiver.NewMetrics(crmetrics.Registry)
	if err != nil {
		return err
	}
	src := &sources.Receiver{Sources: dc, Secrets: cs, Namespace: namespace, Clock: clk}
	h, err := receiver.New(receiver.Options{Secrets: src, Requester: src, Metrics: metrics, Logger: log.WithName("receiver")})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(receiver.PathPrefix, h)
	if err := mgr.Add(&receiverServer{addr: addr, handler: mux, log: log.WithName("receiver")}); err != nil {
		return fmt.Errorf("add the push receiver: %w", err)
	}
	return nil
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every replica receives.
func (s *receiverServer) NeedLeaderElection() bool { return false }

// Start serves until ctx is done.
func (s *receiverServer) Start(ctx context.Context) error {
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("push receiver: listen on %s: %w", s.addr, err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	s.log.Info("serving the Git push receiver", "addr", l.Addr().String(), "path", receiver.PathPrefix+"<source>")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("push receiver: %w", err)
	}
}
