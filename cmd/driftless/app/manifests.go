package app

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime"
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
	cmd.AddCommand(newWebhookManifestCommand(), newSelfProtectionManifestCommand())
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

func newSelfProtectionManifestCommand() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "self-protection",
		Short: "Print the ValidatingAdmissionPolicy and binding that protect the Driftless installation",
		Long: `Print the ValidatingAdmissionPolicy and its ValidatingAdmissionPolicyBinding, generated from
the DriftlessConfig, that deny creates, updates and deletes in the reconciler's namespace and of
the guard's webhook configuration to everyone but the reconciler, Kubernetes' own controllers and
nodes, the configured controller identities and the break-glass groups. The binding's validation
actions follow guard.mode. The API server does not apply such a policy to policies and bindings
themselves: keep them with RBAC.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := v1alpha1.Load(configPath)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			policy, binding := webhook.SelfProtection(cfg)
			return writeYAMLDocuments(cmd.OutOrStdout(), policy, binding)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "driftless.yaml", "path of the DriftlessConfig file")
	return cmd
}

// writeYAMLDocuments writes objects as one YAML stream, separated by ---, without the empty
// status a typed object marshals.
func writeYAMLDocuments(w io.Writer, objects ...runtime.Object) error {
	for i, obj := range objects {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return err
		}
		if status, ok := u["status"].(map[string]any); ok && len(status) == 0 {
			delete(u, "status")
		}
		out, err := yaml.Marshal(u)
		if err != nil {
			return err
		}
		if i > 0 {
			out = append([]byte("---\n"), out...)
		}
		if _, err := w.Write(out); err != nil {
			return err
		}
	}
	return nil
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
	ns, name, ok := strings.Cut(s, "/")
	return ns, name, ok && ns != "" && name != ""
}
