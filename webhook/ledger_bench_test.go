package webhook

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/ledger"
	"github.com/driftless-dev/driftless/test/harness"
)

// BenchmarkDecisionLedger measures the in-process decision as BenchmarkDecision does, with
// the ledger off and on in the same run, one after the other for each request. The ledger
// is the real one: its flush loop runs in the background and writes to a real API server
// (test/harness), so the "on" numbers include its CPU use on the same cores. It reports the
// 99th percentile of single decisions.
func BenchmarkDecisionLedger(b *testing.B) {
	bg := context.Background()
	cp, err := harness.Start(bg)
	if err != nil {
		b.Skipf("no control plane (make envtest): %v", err)
	}
	defer cp.Stop()
	client, err := kubernetes.NewForConfig(cp.Admin.Config)
	if err != nil {
		b.Fatal(err)
	}
	meta, err := metadata.NewForConfig(cp.Admin.Config)
	if err != nil {
		b.Fatal(err)
	}
	const ns = "driftless-bench"
	if _, err := client.CoreV1().Namespaces().Create(bg, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	cfg := &v1alpha1.DriftlessConfig{}
	v1alpha1.SetDefaults(cfg)
	cfg.Ledger.FlushInterval = metav1.Duration{Duration: time.Second}
	m, err := ledger.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	led, err := ledger.New(ledger.Options{Settings: cfg.Ledger, Namespace: ns, Client: client, Metadata: meta, Replica: "bench", Metrics: m})
	if err != nil {
		b.Fatal(err)
	}
	lctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() { done <- led.Start(lctx) }()
	defer func() { cancel(); <-done }()

	ctx := log.IntoContext(bg, zap.New(zap.WriteTo(io.Discard)))
	reqs := benchRequests()
	names := make([]string, 0, len(reqs))
	for name := range reqs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		for _, on := range []bool{false, true} {
			mode := "ledger-off"
			if on {
				mode = "ledger-on"
			}
			b.Run(name+"/"+mode, func(b *testing.B) {
				g, _ := newTestGuard(b, v1alpha1.ModeEnforce)
				if on {
					g.ledger = led
				}
				timeEach(b, func() { g.Handle(ctx, reqs[name]) })
			})
		}
	}
}
