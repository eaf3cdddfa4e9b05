package webhook

import (
	"os"
	"path/filepath"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

func TestWebhookConfigurationGolden(t *testing.T) {
	for _, name := range []string{"minimal", "full"} {
		t.Run(name, func(t *testing.T) {
			cfg, err := v1alpha1.Load(filepath.Join("..", "config", "v1alpha1", "testdata", name+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			vwc := WebhookConfiguration(cfg, admissionregistrationv1.WebhookClientConfig{
				Service: &admissionregistrationv1.ServiceReference{Namespace: "driftless-system", Name: "driftless-webhook", Path: ptr.To(GuardPath)},
			})
			got, err := yaml.Marshal(vwc)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "webhookconfiguration-"+name+".golden.yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (go test -update): %v", err)
			}
			if string(got) != string(want) {
				t.Errorf("webhook configuration differs from %s (go test -update to accept):\n%s", golden, got)
			}
		})
	}
}
