package ledger

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/test/harness"
)

var cp *harness.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if cp, err = harness.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "ledger:", err)
		return 1
	}
	defer cp.Stop()
	return m.Run()
}

// newTestLedger returns a ledger writing to a new namespace as the admin.
func newTestLedger(t *testing.T, ns, replica string, clk *clocktesting.FakeClock, mutate func(*v1alpha1.Ledger)) (*Ledger, kubernetes.Interface) {
	t.Helper()
	client, err := kubernetes.NewForConfig(cp.Admin.Config)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := metadata.NewForConfig(cp.Admin.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	c := &v1alpha1.DriftlessConfig{}
	v1alpha1.SetDefaults(c)
	settings := c.Ledger
	if mutate != nil {
		mutate(&settings)
	}
	l, err := New(Options{Settings: settings, Namespace: ns, Client: client, Metadata: meta, Replica: replica, Clock: clk, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	return l, client
}

func isExists(err error) bool {
	return err != nil && (metav1.StatusReasonAlreadyExists == reasonOf(err))
}

func reasonOf(err error) metav1.StatusReason {
	type status interface{ Status() metav1.Status }
	if s, ok := err.(status); ok {
		return s.Status().Reason
	}
	return ""
}

func denial(at time.Time, user string, i int) Record {
	return Record{Time: at, Decision: "denied", Reason: "protected-namespace", User: user, Operation: "UPDATE",
		Object: Object{APIVersion: "v1", Kind: "ConfigMap", Resource: "configmaps", Namespace: "production", Name: fmt.Sprintf("cm-%d", i)}}
}

// TestWritersDoNotClobberEachOther runs three writers at once, two of them with the same
// replica name (a restarted process next to its predecessor) and enough records to fill more
// than one ConfigMap: every record is read back exactly once.
func TestWritersDoNotClobberEachOther(t *testing.T) {
	const ns, perWriter = "ledger-writers", 1500
	clk := clocktesting.NewFakeClock(time.Now())
	writers := []struct{ replica, user string }{{"pod-a", "bob"}, {"pod-a", "carol"}, {"pod-b", "dave"}}
	var wg sync.WaitGroup
	for _, w := range writers {
		l, _ := newTestLedger(t, ns, w.replica, clk, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				l.Admission(denial(clk.Now(), w.user, i), nil, nil)
				if i%250 == 249 {
					l.flush(t.Context(), logr.Discard())
				}
			}
			l.flush(t.Context(), logr.Discard())
			if len(l.pending) != 0 {
				t.Errorf("%s/%s: %d records not written", w.replica, w.user, len(l.pending))
			}
		}()
	}
	wg.Wait()
	_, client := newTestLedger(t, ns, "reader", clk, nil)
	recs, unreadable, err := Read(t.Context(), client, ns, clk.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if unreadable != 0 {
		t.Errorf("%d unreadable lines", unreadable)
	}
	seen := map[string]int{}
	for _, r := range recs {
		seen[r.User+"/"+r.Object.Name]++
	}
	for _, w := range writers {
		for i := range perWriter {
			if n := seen[fmt.Sprintf("%s/cm-%d", w.user, i)]; n != 1 {
				t.Fatalf("record %d of %s read %d times, want once (%d records read)", i, w.user, n, len(recs))
			}
		}
	}
	list, err := client.CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{LabelSelector: Selector})
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range list.Items {
		if n := len(cm.Data[RecordsKey]); n > maxObjectBytes {
			t.Errorf("configmap %s holds %d bytes, more than %d", cm.Name, n, maxObjectBytes)
		}
	}
	if len(list.Items) < 3 {
		t.Errorf("%d ledger configmaps; the records should have filled more than one per replica", len(list.Items))
	}
}

// TestRetentionAndSizeBound writes records on three days and checks that a cleanup removes
// the ConfigMaps past the retention, then the oldest beyond the size bound.
func TestRetentionAndSizeBound(t *testing.T) {
	const ns = "ledger-retention"
	now := time.Now()
	clk := clocktesting.NewFakeClock(now)
	var maxSize int64 = 1 << 40
	l, client := newTestLedger(t, ns, "pod-a", clk, func(s *v1alpha1.Ledger) {
		s.Retention = metav1.Duration{Duration: 72 * time.Hour}
	})
	for i, age := range []time.Duration{100 * time.Hour, 50 * time.Hour, 2 * time.Hour} {
		l.Admission(denial(now.Add(-age), "bob", i), nil, nil)
	}
	l.flush(t.Context(), logr.Discard())
	count := func() int {
		list, err := client.CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{LabelSelector: Selector})
		if err != nil {
			t.Fatal(err)
		}
		return len(list.Items)
	}
	if n := count(); n != 3 {
		t.Fatalf("%d configmaps for records on three days, want 3", n)
	}
	l.settings.MaxSize = *resource.NewQuantity(maxSize, resource.BinarySI)
	l.prune(t.Context(), logr.Discard())
	if n := count(); n != 2 {
		t.Errorf("%d configmaps after the cleanup, want 2: the 100h-old one is past the 72h retention", n)
	}
	recs, _, err := Read(t.Context(), client, ns, now.Add(-1000*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Object.Name != "cm-1" || recs[1].Object.Name != "cm-2" {
		t.Errorf("records kept: %+v", recs)
	}
	// A bound that holds one ConfigMap keeps the newest.
	l.settings.MaxSize = *resource.NewQuantity(int64(len(mustJSON(t, recs[1]))+1), resource.BinarySI)
	l.prune(t.Context(), logr.Discard())
	if recs, _, _ = Read(t.Context(), client, ns, now.Add(-1000*time.Hour)); len(recs) != 1 || recs[0].Object.Name != "cm-2" {
		t.Errorf("records kept under the size bound: %+v", recs)
	}
}

// TestFullBufferDropsAndCounts fills the buffer without a flush: what does not fit is
// dropped and counted, and Admission returns at once.
func TestFullBufferDropsAndCounts(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	l, _ := newTestLedger(t, "ledger-buffer", "pod-a", clk, func(s *v1alpha1.Ledger) { s.BufferSize = 10 })
	for i := range 25 {
		l.Admission(denial(clk.Now(), "bob", i), nil, nil)
	}
	if n := len(l.buf); n != 10 {
		t.Errorf("%d records buffered, want 10", n)
	}
	if got := testutil.ToFloat64(l.metrics.records.WithLabelValues(outcomeBufferFull)); got != 15 {
		t.Errorf("dropped counter = %v, want 15", got)
	}
	l.flush(t.Context(), logr.Discard())
	if got := testutil.ToFloat64(l.metrics.records.WithLabelValues(outcomeWritten)); got != 10 {
		t.Errorf("written counter = %v, want 10", got)
	}
}

func mustJSON(t *testing.T, r Record) []byte {
	t.Helper()
	b, err := jsonMarshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}
