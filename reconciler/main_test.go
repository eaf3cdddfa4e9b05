package reconciler_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/test/harness"
)

// The control plane and the Event recorder are shared by every test in the package; each
// test uses its own sources and namespaces.
var (
	cp       *harness.ControlPlane
	recorder events.EventRecorder
	// reconcilerConfig is the reconciler's identity without client-side rate limits, as
	// `driftless run` configures it.
	reconcilerConfig *rest.Config
	admin            *kubernetes.Clientset
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	if fuzzing() {
		// Fuzz targets are pure; every fuzz worker process would otherwise start its own
		// control plane. Tests that need one skip.
		return m.Run()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	if cp, err = harness.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "reconciler tests:", err)
		return 1
	}
	defer cp.Stop()
	if r := cp.Admin.Kubectl(ctx, "create", "namespace", v1alpha1.DefaultNamespace); r.Err != nil {
		fmt.Fprintln(os.Stderr, "reconciler tests: create namespace:", r.Combined())
		return 1
	}
	reconcilerConfig = rest.CopyConfig(cp.Reconciler.Config)
	reconcilerConfig.QPS, reconcilerConfig.Burst = -1, 0
	if admin, err = cp.Admin.Clientset(); err != nil {
		fmt.Fprintln(os.Stderr, "reconciler tests:", err)
		return 1
	}
	cs, err := kubernetes.NewForConfig(reconcilerConfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reconciler tests:", err)
		return 1
	}
	b := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
	b.StartRecordingToSink(ctx.Done())
	defer b.Shutdown()
	recorder = b.NewRecorder(scheme.Scheme, "driftless-reconciler")
	return m.Run()
}

// fuzzing reports whether the test binary runs fuzz targets (as coordinator or worker).
func fuzzing() bool {
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}

// requireCluster skips a test when no control plane was started (while fuzzing).
func requireCluster(t testing.TB) {
	t.Helper()
	if cp == nil {
		t.Skip("no control plane while fuzzing")
	}
}
