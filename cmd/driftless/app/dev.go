package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/spf13/cobra"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/test/harness"
	"github.com/driftless-dev/driftless/webhook"
)

// devSource is the source name of the local playground.
const devSource = "payments"

type devOptions struct {
	dir  string
	keep bool
	demo bool
	// breakGlassFor is how long the demo's break-glass lasts.
	breakGlassFor time.Duration
}

func newDevCommand() *cobra.Command {
	o := &devOptions{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local playground: a real control plane, a Git repo, the guard and the reconciler",
		Long: `dev starts a real kube-apiserver and etcd (built once by hack/control-plane.sh and cached),
seeds a local Git repository from config/samples/config-repo, and runs the guard (with a
self-signed CA) and the reconciler against it, with one kubeconfig per persona: admin,
alice (group oncall) and bob (group developers). It prints the commands for each step of the
story and runs until Ctrl-C, then cleans up.

With --demo it runs the story itself, narrating each step and what it observed, and exits
non-zero if any step does not behave as narrated. make demo runs that.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dir, "dir", "", "directory for the playground's files (default: a new temporary directory)")
	f.BoolVar(&o.keep, "keep", false, "keep the directory after exit")
	f.BoolVar(&o.demo, "demo", false, "run the incident story non-interactively and exit")
	f.DurationVar(&o.breakGlassFor, "break-glass-for", 20*time.Second, "how long the demo's break-glass lasts")
	return cmd
}

// devEnv is a running playground.
type devEnv struct {
	out        io.Writer
	dir        string
	repoDir    string
	configPath string
	cp         *harness.ControlPlane
	// admin and dynamic are admin's clients, made once.
	admin   kubernetes.Interface
	dynamic dynamic.Interface
	repo    *git.Repository
	stopRun context.CancelFunc
	runDone chan error
	logPath string
}

func runDev(ctx context.Context, out io.Writer, o *devOptions) (err error) {
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "driftless-dev-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if !o.keep && o.dir == "" {
		defer os.RemoveAll(dir)
	}
	env := &devEnv{out: out, dir: dir}
	defer func() { err = errors.Join(err, env.close()) }()
	if err := env.start(ctx); err != nil {
		return err
	}
	if o.demo {
		return env.demo(ctx, o.breakGlassFor)
	}
	env.printGuide()
	<-ctx.Done()
	fmt.Fprintln(out, "\nstopping: guard, reconciler and control plane")
	return nil
}

func (e *devEnv) say(format string, args ...any) {
	fmt.Fprintf(e.out, "==> "+format+"\n", args...)
}

func (e *devEnv) start(ctx context.Context) error {
	root, err := harness.ModuleRoot()
	if err != nil {
		return fmt.Errorf("driftless dev runs from a Driftless checkout (it needs hack/ and config/samples/): %w", err)
	}
	sample := filepath.Join(root, "config", "samples", "config-repo")
	if _, err := os.Stat(sample); err != nil {
		return fmt.Errorf("driftless dev runs from a Driftless checkout: %w", err)
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		e.say("control plane binaries (built once, then cached)")
		script := exec.CommandContext(ctx, filepath.Join(root, "hack", "control-plane.sh"))
		script.Stderr = e.out
		assets, err := script.Output()
		if err != nil {
			return fmt.Errorf("hack/control-plane.sh: %w", err)
		}
		lines := strings.Split(strings.TrimSpace(string(assets)), "\n")
		if err := os.Setenv("KUBEBUILDER_ASSETS", lines[len(lines)-1]); err != nil {
			return err
		}
	}

	e.say("starting kube-apiserver and etcd")
	if e.cp, err = harness.Start(ctx); err != nil {
		return err
	}
	if e.admin, err = e.cp.Admin.Clientset(); err != nil {
		return err
	}
	if e.dynamic, err = dynamic.NewForConfig(e.cp.Admin.Config); err != nil {
		return err
	}
	admin := e.admin
	for _, ns := range []string{v1alpha1.DefaultNamespace, "production", "staging"} {
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create namespace %s: %w", ns, err)
		}
	}

	e.say("seeding a local Git repository from config/samples/config-repo")
	e.repoDir = filepath.Join(e.dir, "config-repo")
	if err := copyTree(sample, e.repoDir); err != nil {
		return err
	}
	if e.repo, err = git.PlainInitWithOptions(e.repoDir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.Main}}); err != nil {
		return fmt.Errorf("init %s: %w", e.repoDir, err)
	}
	if _, err := e.commit("Initial configuration from the platform team", "Platform Team"); err != nil {
		return err
	}

	e.configPath = filepath.Join(e.dir, "driftless.yaml")
	config := fmt.Sprintf(`apiVersion: driftless.dev/v1alpha1
kind: DriftlessConfig
sources:
  - name: %s
    url: %s
    path: overlays/production
    interval: 5s
    policySet: production
guard:
  protectedNamespaces: [production, staging]
  breakGlass:
    groups: [%s]
    maxDuration: 1h
  policySet: production
policySets:
  - name: production
    environment: production
    paths: [%s]
    parameters:
      allowed_registries: [registry.example.com]
`, devSource, e.repoDir, harness.OncallGroup, filepath.Join(e.repoDir, "policies"))
	if err := os.WriteFile(e.configPath, []byte(config), 0o644); err != nil {
		return err
	}
	// The in-cluster copy of the configuration, where driftless break-glass reads the groups
	// and the maximum duration.
	if _, err := admin.CoreV1().ConfigMaps(v1alpha1.DefaultNamespace).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: configMapName},
		Data:       map[string]string{configMapKey: config},
	}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create the driftless-config ConfigMap: %w", err)
	}

	e.say("starting driftless run: the guard (self-signed CA) and the reconciler")
	ca, err := harness.NewCA()
	if err != nil {
		return err
	}
	certDir := filepath.Join(e.dir, "certs")
	if err := ca.WriteServingCert(certDir, 1, "127.0.0.1"); err != nil {
		return err
	}
	addrs := make([]string, 3)
	for i := range addrs {
		if addrs[i], err = harness.FreeAddr(); err != nil {
			return err
		}
	}
	e.logPath = filepath.Join(e.dir, "driftless.log")
	logFile, err := os.Create(e.logPath)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.stopRun, e.runDone = cancel, make(chan error, 1)
	go func() {
		defer logFile.Close()
		e.runDone <- Run(runCtx, RunOptions{
			ConfigPath: e.configPath, CertDir: certDir,
			WebhookAddr: addrs[0], MetricsAddr: addrs[1], ProbeAddr: addrs[2],
			ConfigReloadInterval: time.Second, CacheDir: filepath.Join(e.dir, "cache"),
			RESTConfig: e.cp.Reconciler.Config,
			Logger:     zap.New(zap.WriteTo(logFile)),
		})
	}()
	if err := e.waitReady(ctx, "http://"+addrs[2]+"/readyz"); err != nil {
		return err
	}
	cfg, err := v1alpha1.Load(e.configPath)
	if err != nil {
		return err
	}
	vwc := webhook.WebhookConfiguration(cfg, admissionregistrationv1.WebhookClientConfig{
		URL: ptr.To("https://" + addrs[0] + webhook.GuardPath), CABundle: ca.PEM,
	})
	if _, err := admin.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, vwc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("install the webhook configuration: %w", err)
	}
	e.say("ready: logs in %s", e.logPath)
	return nil
}

func (e *devEnv) waitReady(ctx context.Context, url string) error {
	return harness.WaitReady(ctx, url, func() error {
		select {
		case err := <-e.runDone:
			e.runDone <- err
			return fmt.Errorf("driftless run exited: %w (see %s)", err, e.logPath)
		default:
			return nil
		}
	})
}

func (e *devEnv) close() error {
	var errs []error
	if e.stopRun != nil {
		e.stopRun()
		if err := <-e.runDone; err != nil {
			errs = append(errs, err)
		}
	}
	if e.cp != nil {
		errs = append(errs, e.cp.Stop())
	}
	return errors.Join(errs...)
}

// commit commits every change in the playground repository.
func (e *devEnv) commit(message, author string) (string, error) {
	wt, err := e.repo.Worktree()
	if err != nil {
		return "", err
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		return "", fmt.Errorf("git add: %w", err)
	}
	sha, err := wt.Commit(message, &git.CommitOptions{Author: &object.Signature{
		Name: author, Email: strings.ToLower(strings.ReplaceAll(author, " ", ".")) + "@example.com", When: time.Now(),
	}})
	if err != nil {
		return "", fmt.Errorf("git commit: %w", err)
	}
	return sha.String(), nil
}

func (e *devEnv) printGuide() {
	k := func(u *harness.User) string { return e.cp.KubectlPath + " --kubeconfig " + u.Kubeconfig }
	self, _ := os.Executable()
	fmt.Fprintf(e.out, `
The playground is running. Protected namespaces: production, staging. Source %q follows
%s (path overlays/production); commit there and the reconciler applies it within 5s.

  # bob (developers) tweaks production by hand: denied, with the way forward
  %s -n production edit configmap/payment-gateway-config

  # bob tries to grant himself break-glass: refused
  %s break-glass --kubeconfig %s -n production configmap/payment-gateway-config --reason "INC-123" --for 10m

  # alice (oncall) breaks glass and raises the pool size
  %s break-glass --kubeconfig %s -n production configmap/payment-gateway-config --reason "INC-123: raise pool size" --for 2m
  %s -n production patch configmap/payment-gateway-config --type merge -p '{"data":{"POOL_SIZE":"80"}}'
  %s break-glass --kubeconfig %s --list

  # what the reconciler sees, and the diff to commit; at expiry it reverts to Git
  %s status --kubeconfig %s

  # keep the change the Git way
  cd %s && $EDITOR overlays/production/configmap-patch.yaml && git commit -am "Raise pool size"

Logs: %s. Ctrl-C stops everything and cleans up.
`, devSource, e.repoDir, k(e.cp.Bob), self, e.cp.Bob.Kubeconfig, self, e.cp.Alice.Kubeconfig, k(e.cp.Alice), self, e.cp.Alice.Kubeconfig,
		self, e.cp.Admin.Kubeconfig, e.repoDir, e.logPath)
}

// copyTree copies the regular files under src to dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}
