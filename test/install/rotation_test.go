package install

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/test/harness"
	"github.com/driftless-dev/driftless/test/inprocess"
	"github.com/driftless-dev/driftless/webhook"
)

// installURLWebhook creates, or replaces, the webhook configuration generated from the guard's
// configuration with the guard's URL and CA, as the reconciler: the identity that keeps
// Driftless's own objects in a real installation, and the one self-protection never stops.
func installURLWebhook(t *testing.T, g *inprocess.Server) *admissionregistrationv1.ValidatingWebhookConfiguration {
	t.Helper()
	ctx := t.Context()
	cfg, err := v1alpha1.Load(g.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	vwc := webhook.WebhookConfiguration(cfg, admissionregistrationv1.WebhookClientConfig{
		URL:      ptr.To("https://" + g.WebhookAddr + webhook.GuardPath),
		CABundle: g.CA.PEM,
	})
	rec, err := cp.Reconciler.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	api := rec.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	t.Cleanup(func() {
		if err := api.Delete(context.Background(), vwc.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete webhook configuration: %v", err)
		}
	})
	created, err := api.Create(ctx, vwc, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		var old *admissionregistrationv1.ValidatingWebhookConfiguration
		if old, err = api.Get(ctx, vwc.Name, metav1.GetOptions{}); err == nil {
			vwc.ResourceVersion = old.ResourceVersion
			created, err = api.Update(ctx, vwc, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		t.Fatalf("install webhook configuration: %v", err)
	}
	return created
}

// verifiedServingCert connects to the guard as the API server does, trusting only caBundle and
// checking the host, and returns the certificate it presents.
func verifiedServingCert(addr string, caBundle []byte) (*x509.Certificate, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caBundle) {
		return nil, errors.New("caBundle holds no certificate")
	}
	host, _, _ := strings.Cut(addr, ":")
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// TestServingCertificateRotation runs the guard with config/default's configuration and a
// serving certificate for the names config/certmanager's Certificate asks for, replaces the
// certificate files as cert-manager's renewal does (same CA, new key and serial), and shows that
// the guard serves the new certificate without a restart and the API server keeps calling it.
func TestServingCertificateRotation(t *testing.T) {
	ctx := t.Context()
	config, err := os.ReadFile(filepath.Join(root, "config", "default", "driftless.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := inprocess.New(cp, string(config))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(g.Dir) })

	crt := convert[cmapi.Certificate](t, find(t, renderDefault(t), "Certificate", "driftless-webhook"))
	// The test API server reaches the guard at 127.0.0.1; in a cluster it uses the Service name.
	hosts := append([]string{"127.0.0.1"}, crt.Spec.DNSNames...)
	if err := g.CA.WriteServingCert(g.CertDir, 2, hosts...); err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Stop(); err != nil {
			t.Errorf("driftless run: %v", err)
		}
	})
	vwc := installURLWebhook(t, g)
	if err := g.WaitEnforcing(ctx); err != nil {
		t.Fatal(err)
	}

	caBundle := vwc.Webhooks[0].ClientConfig.CABundle
	serviceHost := webhook.ServiceDNSNames(types.NamespacedName{Namespace: driftlessNamespace, Name: "driftless-webhook"})[0]
	servesSerial := func(want int64) func() error {
		return func() error {
			cert, err := verifiedServingCert(g.WebhookAddr, caBundle)
			if err != nil {
				return err
			}
			if cert.SerialNumber.Cmp(big.NewInt(want)) != 0 {
				return fmt.Errorf("serving certificate %s, want %d", cert.SerialNumber, want)
			}
			if err := cert.VerifyHostname(serviceHost); err != nil {
				return fmt.Errorf("serving certificate %d: %w", want, err)
			}
			return nil
		}
	}
	if err := servesSerial(2)(); err != nil {
		t.Fatal(err)
	}
	before, err := g.Decisions()
	if err != nil {
		t.Fatal(err)
	}

	if err := g.CA.WriteServingCert(g.CertDir, 3, hosts...); err != nil {
		t.Fatal(err)
	}
	if err := harness.Poll(ctx, time.Minute, servesSerial(3)); err != nil {
		t.Fatalf("the guard does not serve the rotated certificate: %v", err)
	}

	// The API server still reaches the guard: bob's change in a protected namespace is denied
	// by the guard itself (its message), not by a failed call (failurePolicy Fail). Concurrent
	// requests make the API server open connections beyond the ones it kept alive, and those
	// handshakes see the new certificate.
	r := cp.Bob.Kubectl(ctx, "create", "configmap", "-n", protectedNamespace, "tweak", "--from-literal=poolSize=20")
	if r.Err == nil {
		t.Fatalf("bob's change in %s was allowed after rotation:\n%s", protectedNamespace, r.Combined())
	}
	if msg := r.Combined(); !strings.Contains(msg, "driftless: bob may not create configmaps/tweak in namespace production") {
		t.Fatalf("bob's change was refused, but not by the guard:\n%s", msg)
	}
	bob, err := cp.Bob.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	const parallel = 8
	errs := make([]error, parallel)
	var wg sync.WaitGroup
	for i := range parallel {
		wg.Go(func() {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("tweak-%d", i), Namespace: protectedNamespace}}
			_, errs[i] = bob.CoreV1().ConfigMaps(protectedNamespace).Create(ctx, cm, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "driftless: bob may not create configmaps/tweak-") {
			t.Errorf("request %d after rotation: %v, want the guard's denial", i, err)
		}
	}
	after, err := g.Decisions()
	if err != nil {
		t.Fatal(err)
	}
	if got := after["total"] - before["total"]; got < parallel+1 {
		t.Errorf("the guard decided %v requests after rotation, want at least %d", got, parallel+1)
	}
}
