package inprocess

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/driftless-dev/driftless/test/harness"
)

const config = `apiVersion: driftless.dev/v1alpha1
kind: DriftlessConfig
guard:
  protectedNamespaces: [production]
`

// TestStartPicksNewAddressesWhenOneIsTaken: a port New picked that something else listens on
// by the time Start runs, whichever listener it is for, makes the first Start pick new
// addresses and start there, instead of failing the test that started it.
func TestStartPicksNewAddressesWhenOneIsTaken(t *testing.T) {
	cp, err := harness.Start(context.Background())
	if err != nil {
		t.Skipf("no control plane (make envtest): %v", err)
	}
	defer cp.Stop()
	for _, c := range []struct {
		name string
		addr func(*Server) *string
	}{
		{"webhook", func(s *Server) *string { return &s.WebhookAddr }},
		{"metrics", func(s *Server) *string { return &s.MetricsAddr }},
		{"probe", func(s *Server) *string { return &s.ProbeAddr }},
		{"receiver", func(s *Server) *string { return &s.ReceiverAddr }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := NewWithOptions(cp, config, Options{Dir: t.TempDir(), GuardOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			taken := *c.addr(s)
			l, err := net.Listen("tcp", taken)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if err := s.Start(); err != nil {
				t.Fatalf("start with %s taken: %v", taken, err)
			}
			defer func() {
				if err := s.Stop(); err != nil {
					t.Error(err)
				}
			}()
			if *c.addr(s) == taken {
				t.Fatalf("the %s address is still the taken %s", c.name, taken)
			}
			resp, err := http.Get("http://" + s.ProbeAddr + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("readyz: %s", resp.Status)
			}
		})
	}
}
