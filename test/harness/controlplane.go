package harness

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Identities of the personas every control plane has.
const (
	AdminName      = "admin"
	AliceName      = "alice"
	BobName        = "bob"
	OncallGroup    = "oncall"
	DevelopersGrp  = "developers"
	ReconcilerName = "system:serviceaccount:driftless-system:driftless"
)

// ControlPlane is a running kube-apiserver and etcd with the personas of the Driftless story.
type ControlPlane struct {
	env *envtest.Environment
	// Admin is in system:masters.
	Admin *User
	// Alice is an on-call engineer, in group oncall.
	Alice *User
	// Bob is an application developer, in group developers.
	Bob *User
	// Reconciler authenticates as the reconciler's service account.
	Reconciler *User
	// Dir is a private directory for kubeconfigs, removed by Stop.
	Dir string
	// KubectlPath is the kubectl built for this control plane.
	KubectlPath string
	// WebhookClientCA signs the client certificate the API server presents to every admission
	// webhook (its --admission-control-config-file says so); a guard that trusts only this CA
	// lets in the API server and no one else.
	WebhookClientCA *CA
	// WebhookClientCert and WebhookClientKey are that client certificate and its key, PEM.
	WebhookClientCert, WebhookClientKey []byte
	// ownRBAC is Options.OwnRBAC: AddUser binds nobody to cluster-admin.
	ownRBAC bool
	// apiServerPID is the kube-apiserver's process id once APIServerCPU has found it.
	apiServerPID int
}

// Options change how StartWithOptions sets a control plane up; the zero value is Start's.
type Options struct {
	// OwnRBAC leaves every persona but admin without rights: the caller grants them, as a real
	// installation and its RBAC would. Otherwise they are bound to cluster-admin, so that only
	// admission stands between them and a change.
	OwnRBAC bool
}

// WebhookClientTLS returns the API server's webhook client certificate, for tests that talk
// to a webhook as the API server does.
func (cp *ControlPlane) WebhookClientTLS() (tls.Certificate, error) {
	return tls.X509KeyPair(cp.WebhookClientCert, cp.WebhookClientKey)
}

// User is an identity with its own client certificate, REST config and kubeconfig file.
type User struct {
	Name       string
	Groups     []string
	Config     *rest.Config
	Kubeconfig string
	kubectl    string
}

// AssetsDir returns the directory holding kube-apiserver, etcd and kubectl: KUBEBUILDER_ASSETS
// when set, otherwise what hack/control-plane.sh --print reports (it does not build).
func AssetsDir() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	out, err := exec.Command(filepath.Join(root, "hack", "control-plane.sh"), "--print").Output()
	if err != nil {
		return "", fmt.Errorf("control-plane binaries are not built: run `make envtest` (hack/control-plane.sh): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// ModuleRoot returns the directory of the Driftless go.mod, searching up from the working
// directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Start starts a control plane and provisions the personas. Every persona but admin is bound
// to cluster-admin, so that only admission, never RBAC, stands between them and a change. The
// API server presents WebhookClientCert to every admission webhook it calls.
func Start(ctx context.Context) (*ControlPlane, error) {
	return StartWithOptions(ctx, Options{})
}

// StartWithOptions starts a control plane, installs Driftless's CustomResourceDefinitions
// (config/crd/bases) and provisions the personas as o says.
func StartWithOptions(ctx context.Context, o Options) (*ControlPlane, error) {
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "driftless-cp-")
	if err != nil {
		return nil, err
	}
	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		// Driftless's own CustomResourceDefinitions (GitSource), as config/default installs them.
		CRDDirectoryPaths:        []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	cp := &ControlPlane{env: env, Dir: dir, KubectlPath: filepath.Join(assets, "kubectl"), ownRBAC: o.OwnRBAC}
	admission, err := cp.writeWebhookClientConfig()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	env.ControlPlane.GetAPIServer().Configure().Set("admission-control-config-file", admission)
	if _, err := env.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start control plane from %s: %w", assets, err)
	}
	fail := func(err error) (*ControlPlane, error) {
		_ = cp.Stop()
		return nil, err
	}
	if cp.Admin, err = cp.AddUser(ctx, AdminName, "system:masters"); err != nil {
		return fail(err)
	}
	if cp.Alice, err = cp.AddUser(ctx, AliceName, OncallGroup); err != nil {
		return fail(err)
	}
	if cp.Bob, err = cp.AddUser(ctx, BobName, DevelopersGrp); err != nil {
		return fail(err)
	}
	if cp.Reconciler, err = cp.AddUser(ctx, ReconcilerName, "system:serviceaccounts", "system:serviceaccounts:driftless-system"); err != nil {
		return fail(err)
	}
	return cp, nil
}

// writeWebhookClientConfig makes the API server present a client certificate to every
// admission webhook: a CA, a certificate from it, the kubeconfig naming the certificate for
// every webhook host ("*"), and the AdmissionConfiguration pointing both webhook admission
// plugins at that kubeconfig. It returns the AdmissionConfiguration's path.
func (cp *ControlPlane) writeWebhookClientConfig() (string, error) {
	ca, err := NewCA()
	if err != nil {
		return "", err
	}
	crt, key, err := ca.ClientCert("kube-apiserver-webhook-client", 10)
	if err != nil {
		return "", err
	}
	cp.WebhookClientCA, cp.WebhookClientCert, cp.WebhookClientKey = ca, crt, key
	files := map[string][]byte{
		"webhook-client.crt": crt,
		"webhook-client.key": key,
		"webhook-client.kubeconfig": fmt.Appendf(nil, `apiVersion: v1
kind: Config
users:
  - name: "*"
    user:
      client-certificate: %s
      client-key: %s
`, filepath.Join(cp.Dir, "webhook-client.crt"), filepath.Join(cp.Dir, "webhook-client.key")),
	}
	var plugins strings.Builder
	for _, p := range []string{"ValidatingAdmissionWebhook", "MutatingAdmissionWebhook"} {
		fmt.Fprintf(&plugins, `  - name: %s
    configuration:
      apiVersion: apiserver.config.k8s.io/v1
      kind: WebhookAdmissionConfiguration
      kubeConfigFile: %s
`, p, filepath.Join(cp.Dir, "webhook-client.kubeconfig"))
	}
	files["admission.yaml"] = []byte("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n" + plugins.String())
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(cp.Dir, name), data, 0o600); err != nil {
			return "", err
		}
	}
	return filepath.Join(cp.Dir, "admission.yaml"), nil
}

// Stop stops the control plane and removes its files.
func (cp *ControlPlane) Stop() error {
	err := cp.env.Stop()
	return errors.Join(err, os.RemoveAll(cp.Dir))
}

// AddUser provisions a user with a client certificate for name and groups, writes its
// kubeconfig and binds it to cluster-admin (unless it is in system:masters already, or the
// control plane was started with Options.OwnRBAC).
func (cp *ControlPlane) AddUser(ctx context.Context, name string, groups ...string) (*User, error) {
	return cp.addUser(ctx, name, !cp.ownRBAC, groups)
}

// AddUnboundUser provisions a user like AddUser but binds it to nothing, whatever the control
// plane's options: the test grants its rights, as an installation's RBAC would.
func (cp *ControlPlane) AddUnboundUser(ctx context.Context, name string, groups ...string) (*User, error) {
	return cp.addUser(ctx, name, false, groups)
}

// addUser provisions a user and, when bind is set, binds it to cluster-admin.
func (cp *ControlPlane) addUser(ctx context.Context, name string, bind bool, groups []string) (*User, error) {
	au, err := cp.env.AddUser(envtest.User{Name: name, Groups: groups}, &rest.Config{QPS: 200, Burst: 400})
	if err != nil {
		return nil, fmt.Errorf("add user %s: %w", name, err)
	}
	kc, err := au.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig for %s: %w", name, err)
	}
	path := filepath.Join(cp.Dir, strings.NewReplacer(":", "_", "/", "_").Replace(name)+".kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		return nil, err
	}
	u := &User{Name: name, Groups: groups, Config: au.Config(), Kubeconfig: path, kubectl: cp.KubectlPath}
	if !bind || slices.Contains(groups, "system:masters") {
		return u, nil
	}
	cs, err := kubernetes.NewForConfig(cp.env.Config)
	if err != nil {
		return nil, err
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "harness-admin-" + strings.NewReplacer(":", "-", "/", "-").Replace(name)},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: name}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("bind %s to cluster-admin: %w", name, err)
	}
	return u, nil
}

// KubectlResult is what one kubectl run printed.
type KubectlResult struct {
	Stdout, Stderr string
	Err            error
}

// Combined is stdout and stderr together, for assertions on messages.
func (r KubectlResult) Combined() string { return r.Stdout + r.Stderr }

// Kubectl runs the real kubectl as the user.
func (u *User) Kubectl(ctx context.Context, args ...string) KubectlResult {
	return u.KubectlWith(ctx, nil, nil, args...)
}

// KubectlWith runs the real kubectl as the user with stdin (when not nil) and extra
// environment variables, such as KUBE_EDITOR for kubectl edit.
func (u *User) KubectlWith(ctx context.Context, stdin []byte, env []string, args ...string) KubectlResult {
	cmd := exec.CommandContext(ctx, u.kubectl, append([]string{"--kubeconfig", u.Kubeconfig}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.Env = append(os.Environ(), env...)
	err := cmd.Run()
	return KubectlResult{Stdout: out.String(), Stderr: errb.String(), Err: err}
}

// Clientset returns a typed client acting as the user.
func (u *User) Clientset() (*kubernetes.Clientset, error) {
	return kubernetes.NewForConfig(u.Config)
}

// CertManagerCRDs returns the CustomResourceDefinition files that the cert-manager module in
// go.mod ships under deploy/crds; root is the Driftless module root.
func CertManagerCRDs(root string) ([]string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cert-manager/cert-manager")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("find the cert-manager module: %w", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "deploy", "crds")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no CustomResourceDefinitions in %s", dir)
	}
	return files, nil
}

// CertificateReadyStatus is a merge patch of a cert-manager Certificate's status subresource
// that reports it Ready, issued at now for 90 days, as cert-manager's controller would where
// none runs.
func CertificateReadyStatus(now time.Time) string {
	now = now.UTC()
	return fmt.Sprintf(`{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Ready","message":"Certificate is up to date and has not expired","observedGeneration":1,"lastTransitionTime":%q}],"notBefore":%q,"notAfter":%q,"renewalTime":%q}}`,
		now.Format(time.RFC3339), now.Format(time.RFC3339), now.Add(90*24*time.Hour).Format(time.RFC3339), now.Add(60*24*time.Hour).Format(time.RFC3339))
}
