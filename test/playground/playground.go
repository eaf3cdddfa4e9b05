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
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/driftless-dev/driftless/test/harness"
	"github.com/driftless-dev/driftless/test/inprocess"
)

// source is the source name of the playground.
const source = "payments"

// appNamespaces are the playground's application namespaces, both protected.
var appNamespaces = []string{"production", "staging"}

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
	p, err := Start(ctx, o)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			p.keepForItsLog()
		}
		err = errors.Join(err, p.Stop())
	}()
	if o.Demo {
		return p.e.demo(ctx, o.BreakGlassFor)
	}
	p.e.printGuide()
	<-ctx.Done()
	fmt.Fprintln(o.Out, "\nstopping: guard, reconciler and control plane")
	return nil
}

// Playground is a running playground, for a test that drives it itself.
type Playground struct {
	e      *env
	remove bool
}

// Start starts the playground as Run does and returns once it is ready; Stop ends it.
func Start(ctx context.Context, o Options) (*Playground, error) {
	if o.Out == nil || o.Driftless == "" {
		return nil, errors.New("playground: Out and Driftless are required")
	}
	driftlessBin, err := filepath.Abs(o.Driftless)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(driftlessBin); err != nil {
		return nil, fmt.Errorf("the playground runs the driftless binary %s (build it with make build): %w", o.Driftless, err)
	}
	p := &Playground{}
	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "driftless-dev-"); err != nil {
			return nil, err
		}
		p.remove = !o.Keep
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p.e = &env{out: o.Out, dir: dir, driftlessBin: driftlessBin, keepDir: !p.remove}
	if err := p.e.start(ctx); err != nil {
		p.keepForItsLog()
		return nil, errors.Join(err, p.Stop())
	}
	return p, nil
}

// keepForItsLog keeps a temporary directory that Stop would remove, once the log in it has
// been started (errors point at it from then on), after a failure, and says so.
func (p *Playground) keepForItsLog() {
	if p.remove && p.e.logPath != "" {
		p.remove = false
		fmt.Fprintf(p.e.out, "The playground failed; its directory %s is kept, with the reconciler's log.\n", p.e.dir)
	}
}

// ControlPlane returns the playground's control plane and its personas.
func (p *Playground) ControlPlane() *harness.ControlPlane { return p.e.cp }

// ReceiverAddr returns the address of the Git push receiver of the playground's `driftless run`.
func (p *Playground) ReceiverAddr() string { return p.e.server.ReceiverAddr }

// EnvFile returns the shell file that gives the personas short commands.
func (p *Playground) EnvFile() string { return p.e.envPath }

// Stop stops the guard, the reconciler and the control plane, and removes a temporary
// directory unless Options.Keep.
func (p *Playground) Stop() error {
	err := p.e.close()
	if p.remove {
		err = errors.Join(err, os.RemoveAll(p.e.dir))
	}
	return err
}

// env is a running playground.
type env struct {
	out          io.Writer
	dir          string
	driftlessBin string
	repoDir      string
	// gitSource is the playground's GitSource, applied with config/default.
	gitSource string
	cp        *harness.ControlPlane
	server    *inprocess.Server
	serverUp  bool
	// admin and dynamic are admin's clients, made once.
	admin   kubernetes.Interface
	dynamic dynamic.Interface
	repo    *git.Repository
	logPath string
	logFile *os.File
	logger  logr.Logger
	// envPath is a shell file that gives the personas short commands.
	envPath string
	// keepDir says dir stays after the playground stops: it was given, or Options.Keep.
	keepDir bool
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
	e.logger = zap.New(zap.WriteTo(e.logFile))
	ctrllog.SetLogger(e.logger)

	e.say("starting kube-apiserver and etcd")
	if e.cp, err = harness.StartWithOptions(ctx, harness.Options{OwnRBAC: true}); err != nil {
		return err
	}
	if e.admin, err = e.cp.Admin.Clientset(); err != nil {
		return err
	}
	if e.dynamic, err = dynamic.NewForConfig(e.cp.Admin.Config); err != nil {
		return err
	}
	for _, ns := range appNamespaces {
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
reconciler:
  serviceAccount: {namespace: driftless-system, name: driftless}
guard:
  protectedNamespaces: [%s]
  controllerIdentities:
    usernames: [%s]
  breakGlass:
    groups: [%s]
    maxDuration: 1h
  policySet: production
ledger:
  # Records reach the ledger (driftless audit, driftless ui) within seconds.
  flushInterval: 2s
policySets:
  - name: production
    environment: production
    paths: [%s]
    parameters:
      allowed_registries: [registry.example.com]
`, strings.Join(appNamespaces, ", "), certManagerUser, harness.OncallGroup, filepath.Join(e.repoDir, "policies"))
	// The source is a GitSource, applied with the installation before the self-protection
	// binding: how the first source of a real installation gets in (docs/sources.md).
	e.gitSource = fmt.Sprintf(`apiVersion: driftless.dev/v1alpha1
kind: GitSource
metadata:
  name: %s
  namespace: %s
spec:
  url: %s
  path: overlays/production
  interval: 5s
  policySet: production
`, source, "driftless-system", e.repoDir)
	if err := e.install(ctx, root, config, appNamespaces); err != nil {
		return err
	}
	if err := e.writeEnv(); err != nil {
		return err
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

// writeEnv writes env.sh: sourced in a shell, it puts driftless and the control plane's kubectl
// first on PATH, makes admin, alice and bob run a command as that persona, and gives Git an
// identity for commits in the playground repository.
func (e *env) writeEnv() error {
	e.envPath = filepath.Join(e.dir, "env.sh")
	var b strings.Builder
	fmt.Fprintf(&b, "# The Driftless playground. Source this file: . %s\n", e.envPath)
	fmt.Fprintf(&b, "# then run any command as a persona, e.g.: bob kubectl -n production get configmaps\n")
	fmt.Fprintf(&b, "export PATH=%s:%s:\"$PATH\"\n", shellQuote(filepath.Dir(e.driftlessBin)), shellQuote(filepath.Dir(e.cp.KubectlPath)))
	fmt.Fprintf(&b, "export DRIFTLESS_REPO=%s\n", shellQuote(e.repoDir))
	for _, u := range []*harness.User{e.cp.Admin, e.cp.Alice, e.cp.Bob} {
		fmt.Fprintf(&b, "%s() { KUBECONFIG=%s \"$@\"; }\n", u.Name, shellQuote(u.Kubeconfig))
	}
	b.WriteString("export GIT_AUTHOR_NAME=\"${GIT_AUTHOR_NAME:-Playground User}\" GIT_AUTHOR_EMAIL=\"${GIT_AUTHOR_EMAIL:-playground@example.com}\"\n")
	b.WriteString("export GIT_COMMITTER_NAME=\"${GIT_COMMITTER_NAME:-Playground User}\" GIT_COMMITTER_EMAIL=\"${GIT_COMMITTER_EMAIL:-playground@example.com}\"\n")
	return os.WriteFile(e.envPath, []byte(b.String()), 0o644)
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// guideStep is one step of the guide `make dev` prints: what it shows, and the commands a
// user types for it in a shell that sourced env.sh.
type guideStep struct {
	title    string
	commands []guideCommand
}

// guideCommand is one command line of the guide and what it shows when run as printed.
type guideCommand struct {
	line string
	// refused says the step shows a refusal: the command exits non-zero.
	refused bool
	// shows is text its output contains.
	shows string
}

// guide returns the steps of the guide, in order. The guide's test runs them as printed.
func (e *env) guide() []guideStep {
	cm := "configmap/" + demoConfigMap
	return []guideStep{
		{"bob (developers) tweaks production by hand: denied, with the way forward", []guideCommand{
			{line: "bob kubectl -n production edit " + cm, refused: true, shows: "driftless: bob may not update configmaps/" + demoConfigMap},
		}},
		{"bob tries to grant himself break-glass: refused", []guideCommand{
			{line: "bob driftless break-glass -n production " + cm + " --reason INC-123 --for 10m", refused: true, shows: "bob is not in a break-glass group"},
		}},
		{"alice (oncall) breaks glass and raises the pool size", []guideCommand{
			{line: "alice driftless break-glass -n production " + cm + ` --reason "INC-123: raise pool size" --for 2m`, shows: "break-glass on configmaps/" + demoConfigMap + " in namespace production by alice"},
			{line: "alice kubectl -n production patch " + cm + ` --type merge -p '{"data":{"POOL_SIZE":"80"}}'`, shows: "patched"},
			{line: "alice driftless break-glass --list", shows: demoConfigMap},
		}},
		{"what the reconciler sees, and the diff to commit; at expiry it reverts to Git", []guideCommand{
			{line: "alice driftless status", shows: source + ": "},
		}},
		{"the record for the incident review: revisions applied, denials, break-glass sessions", []guideCommand{
			{line: "alice driftless audit --since 1h", shows: "payment-gateway-config"},
		}},
		{"keep the change the Git way", []guideCommand{
			{line: `cd "$DRIFTLESS_REPO" && sed -i 's/POOL_SIZE: "50"/POOL_SIZE: "80"/' overlays/production/configmap-patch.yaml && git commit -qam "Raise pool size"`},
		}},
		{"the installation protects itself, from admin too; doctor checks it", []guideCommand{
			{line: "admin kubectl delete validatingwebhookconfiguration driftless-guard", refused: true, shows: "driftless-self-protection"},
			{line: "admin driftless doctor", shows: "ok   self-protection"},
		}},
	}
}

func (e *env) printGuide() {
	fmt.Fprintf(e.out, `
The playground is running: Driftless installed from config/default, minus the pods (the guard
and the reconciler run in this process as its service account), with self-protection on.
Protected namespaces: production, staging. Source %q follows the Git repository in
$DRIFTLESS_REPO (path overlays/production); commit there and it is applied within 5s.

  . %s        # then: bob, alice, admin <command> runs it as that person
`, source, e.envPath)
	for _, s := range e.guide() {
		fmt.Fprintf(e.out, "\n  # %s\n", s.title)
		for _, c := range s.commands {
			fmt.Fprintf(e.out, "  %s\n", c.line)
		}
	}
	if e.keepDir {
		fmt.Fprintf(e.out, "\nLogs: %s. Ctrl-C stops everything; %s stays.\n", e.logPath, e.dir)
	} else {
		fmt.Fprintf(e.out, "\nLogs: %s. Ctrl-C stops everything and removes %s (--keep keeps it).\n", e.logPath, e.dir)
	}
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
