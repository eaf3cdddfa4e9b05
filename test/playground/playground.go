package playground

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
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/test/harness"
	"github.com/driftless-dev/driftless/test/inprocess"
)

const (
	// source is the source name of the playground.
	source = "payments"
	// configMapName and configMapKey locate the in-cluster copy of the configuration, where
	// `driftless break-glass` reads the groups and the maximum duration (see config/default).
	configMapName = "driftless-config"
	configMapKey  = "config.yaml"
)

// Options say how Run sets the playground up and what it does on it.
type Options struct {
	// Out receives the narration and the guide; required.
	Out io.Writer
	// Driftless is the path of the driftless binary: the story runs its commands and the
	// guide prints them; required.
	Driftless string
	// Dir holds the playground's files; empty makes a new temporary directory.
	Dir string
	// Keep keeps a temporary Dir after Run returns.
	Keep bool
	// Demo runs the incident story and returns instead of printing the guide and waiting for
	// the context to end.
	Demo bool
	// BreakGlassFor is how long the story's break-glass lasts.
	BreakGlassFor time.Duration
}

// Run starts the playground, then tells the story (Demo) or prints the guide and runs until
// ctx ends; it stops everything it started before it returns.
func Run(ctx context.Context, o Options) (err error) {
	if o.Out == nil || o.Driftless == "" {
		return errors.New("playground: Out and Driftless are required")
	}
	driftlessBin, err := filepath.Abs(o.Driftless)
	if err != nil {
		return err
	}
	if _, err := os.Stat(driftlessBin); err != nil {
		return fmt.Errorf("the playground runs the driftless binary %s (build it with make build): %w", o.Driftless, err)
	}
	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "driftless-dev-"); err != nil {
			return err
		}
		if !o.Keep {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	e := &env{out: o.Out, dir: dir, driftlessBin: driftlessBin}
	defer func() { err = errors.Join(err, e.close()) }()
	if err := e.start(ctx); err != nil {
		return err
	}
	if o.Demo {
		return e.demo(ctx, o.BreakGlassFor)
	}
	e.printGuide()
	<-ctx.Done()
	fmt.Fprintln(o.Out, "\nstopping: guard, reconciler and control plane")
	return nil
}

// env is a running playground.
type env struct {
	out          io.Writer
	dir          string
	driftlessBin string
	repoDir      string
	cp           *harness.ControlPlane
	server       *inprocess.Server
	serverUp     bool
	// admin and dynamic are admin's clients, made once.
	admin   kubernetes.Interface
	dynamic dynamic.Interface
	repo    *git.Repository
	logPath string
	logFile *os.File
}

func (e *env) say(format string, args ...any) {
	fmt.Fprintf(e.out, "==> "+format+"\n", args...)
}

func (e *env) start(ctx context.Context) error {
	root, err := harness.ModuleRoot()
	if err != nil {
		return fmt.Errorf("the playground runs from a Driftless checkout (it needs hack/ and config/samples/): %w", err)
	}
	sample := filepath.Join(root, "config", "samples", "config-repo")
	if _, err := os.Stat(sample); err != nil {
		return fmt.Errorf("the playground runs from a Driftless checkout: %w", err)
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

	// Everything controller-runtime logs, from envtest's start to the reconciler, goes to one
	// file; the terminal shows the narration only.
	e.logPath = filepath.Join(e.dir, "driftless.log")
	if e.logFile, err = os.Create(e.logPath); err != nil {
		return err
	}
	logger := zap.New(zap.WriteTo(e.logFile))
	ctrllog.SetLogger(logger)

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
	for _, ns := range []string{v1alpha1.DefaultNamespace, "production", "staging"} {
		if _, err := e.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
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
`, source, e.repoDir, harness.OncallGroup, filepath.Join(e.repoDir, "policies"))
	if _, err := e.admin.CoreV1().ConfigMaps(v1alpha1.DefaultNamespace).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: configMapName},
		Data:       map[string]string{configMapKey: config},
	}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create the %s ConfigMap: %w", configMapName, err)
	}

	e.say("starting driftless run: the guard (self-signed CA) and the reconciler")
	if e.server, err = inprocess.NewWithOptions(e.cp, config, inprocess.Options{
		Dir:       filepath.Join(e.dir, "driftless"),
		RealClock: true,
		Logger:    logger,
	}); err != nil {
		return err
	}
	if err := e.server.Start(); err != nil {
		return fmt.Errorf("%w (see %s)", err, e.logPath)
	}
	e.serverUp = true
	if err := e.server.Install(ctx); err != nil {
		return fmt.Errorf("install the webhook configuration: %w (see %s)", err, e.logPath)
	}
	e.say("ready: logs in %s", e.logPath)
	return nil
}

func (e *env) close() error {
	var errs []error
	if e.server != nil {
		// Stop on a server whose Start failed returns the error Start already reported.
		if err := e.server.Stop(); err != nil && e.serverUp {
			errs = append(errs, err)
		}
	}
	if e.cp != nil {
		errs = append(errs, e.cp.Stop())
	}
	// Last: stopping the control plane still logs.
	if e.logFile != nil {
		errs = append(errs, e.logFile.Close())
	}
	return errors.Join(errs...)
}

// commit commits every change in the playground repository.
func (e *env) commit(message, author string) (string, error) {
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

func (e *env) printGuide() {
	k := func(u *harness.User) string { return e.cp.KubectlPath + " --kubeconfig " + u.Kubeconfig }
	d := e.driftlessBin
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
`, source, e.repoDir, k(e.cp.Bob), d, e.cp.Bob.Kubeconfig, d, e.cp.Alice.Kubeconfig, k(e.cp.Alice), d, e.cp.Alice.Kubeconfig,
		d, e.cp.Admin.Kubeconfig, e.repoDir, e.logPath)
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
