package app

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/webhook"
)

func newManifestsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "manifests",
		Short: "Print the Kubernetes objects that follow from a DriftlessConfig",
	}
	cmd.AddCommand(newWebhookManifestCommand())
	return cmd
}

func newWebhookManifestCommand() *cobra.Command {
	var (
		configPath, service, url, caFile string
		port                             int32
	)
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Print the ValidatingWebhookConfiguration that routes protected changes to the guard",
		Long: `Print the ValidatingWebhookConfiguration for the guard, generated from the DriftlessConfig:
its rules, namespaceSelector and matchConditions follow guard and reconciler settings.
The webhook is reached through a Service (--service namespace/name, the default) or a URL
(--url); the CA bundle comes from --ca-file, or is left for cert-manager's CA injector.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := v1alpha1.Load(configPath)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			client, err := webhookClientConfig(service, port, url, caFile)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			out, err := yaml.Marshal(webhook.WebhookConfiguration(cfg, client))
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "driftless.yaml", "path of the DriftlessConfig file")
	f.StringVar(&service, "service", v1alpha1.DefaultNamespace+"/driftless-webhook", "namespace/name of the webhook Service")
	f.Int32Var(&port, "service-port", 443, "port of the webhook Service")
	f.StringVar(&url, "url", "", "https URL of the webhook instead of a Service (for a guard outside the cluster)")
	f.StringVar(&caFile, "ca-file", "", "PEM file of the CA that signed the webhook's serving certificate")
	return cmd
}

// webhookClientConfig builds how the API server reaches the guard.
func webhookClientConfig(service string, port int32, url, caFile string) (admissionregistrationv1.WebhookClientConfig, error) {
	var c admissionregistrationv1.WebhookClientConfig
	if url != "" {
		c.URL = ptr.To(url + webhook.GuardPath)
	} else {
		ns, name, ok := splitNamespacedName(service)
		if !ok {
			return c, fmt.Errorf("--service %q: want namespace/name", service)
		}
		c.Service = &admissionregistrationv1.ServiceReference{Namespace: ns, Name: name, Port: ptr.To(port), Path: ptr.To(webhook.GuardPath)}
	}
	if caFile != "" {
		ca, err := os.ReadFile(caFile)
		if err != nil {
			return c, fmt.Errorf("--ca-file: %w", err)
		}
		if len(ca) == 0 {
			return c, errors.New("--ca-file: file is empty")
		}
		c.CABundle = ca
	}
	return c, nil
}

func splitNamespacedName(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i], s[i+1:], i > 0 && i < len(s)-1
		}
	}
	return "", "", false
}
