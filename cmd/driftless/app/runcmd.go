package app

import (
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/driftless-dev/driftless/internal/server"
)

func newRunCommand() *cobra.Command {
	o := server.RunOptions{Version: Version()}
	var development bool
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run in the cluster: admission guard, reconciler, metrics and health endpoints",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Logger = zap.New(zap.UseDevMode(development))
			return server.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ConfigPath, "config", "/etc/driftless/config.yaml", "path of the DriftlessConfig file")
	f.StringVar(&o.CertDir, "cert-dir", "/etc/driftless/certs", "directory with the webhook's tls.crt and tls.key")
	f.StringVar(&o.ClientCAFile, "client-ca-file", "", "PEM file of the CAs whose client certificates the webhook accepts (relative to --cert-dir); the API server must present one. Empty accepts any client")
	f.StringVar(&o.WebhookAddr, "webhook-addr", ":9443", "address the admission webhook listens on")
	f.StringVar(&o.ReceiverAddr, "receiver-addr", "0", "address of the Git push receiver (POST /hook/<source>, signed with the source's spec.receiver secret); 0 disables it")
	f.StringVar(&o.MetricsAddr, "metrics-addr", ":8080", `address of the metrics endpoint, "0" to disable`)
	f.StringVar(&o.ProbeAddr, "health-addr", ":8081", `address of the /healthz and /readyz endpoints, "0" to disable`)
	f.StringVar(&o.CacheDir, "cache-dir", "/var/cache/driftless", "directory for the sources' Git caches")
	f.BoolVar(&o.LeaderElection, "leader-elect", true, "elect one replica to reconcile (every replica serves the webhook)")
	f.DurationVar(&o.ConfigReloadInterval, "config-reload-interval", 10*time.Second, "how often to check the config file for changes")
	f.BoolVar(&development, "log-development", false, "human-readable logs instead of JSON")
	return cmd
}
