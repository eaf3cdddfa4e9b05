package app

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler"
	"github.com/driftless-dev/driftless/test/harness"
)

const (
	demoNamespace = "production"
	demoConfigMap = "payment-gateway-config"
)

// demo runs the incident story on the playground and checks every step.
func (e *devEnv) demo(ctx context.Context, breakGlassFor time.Duration) error {
	steps := []struct {
		title string
		run   func(context.Context) error
	}{
		{"the reconciler applies the production overlay from Git", e.stepInitialSync},
		{"bob raises the pool size with kubectl edit", e.stepBobEdits},
		{"bob tries to grant himself break-glass", e.stepBobSelfGrants},
		{fmt.Sprintf("alice (on-call) breaks glass for %s and raises the pool size, adding a key", breakGlassFor), func(ctx context.Context) error {
			return e.stepAliceBreaksGlass(ctx, breakGlassFor)
		}},
		{"the reconciler leaves the object alone and records its diff from Git", e.stepDiffRecorded},
		{"the break-glass expires: the reconciler reverts to Git and shows the diff to commit", func(ctx context.Context) error {
			return e.stepExpiry(ctx, breakGlassFor)
		}},
		{"the fix is committed to Git and applied", e.stepCommit},
	}
	for i, s := range steps {
		fmt.Fprintf(e.out, "\n--> step %d/%d: %s\n", i+1, len(steps), s.title)
		if err := s.run(ctx); err != nil {
			return &ExitError{Code: 1, Err: fmt.Errorf("demo step %d (%s) did not behave as narrated: %w", i+1, s.title, err)}
		}
	}
	fmt.Fprintf(e.out, "\nThe story held at every step. The reconciler's log is in %s.\n", e.logPath)
	return nil
}

func (e *devEnv) observed(format string, args ...any) {
	fmt.Fprintf(e.out, "    observed: "+format+"\n", args...)
}

func (e *devEnv) quote(text string) {
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		fmt.Fprintf(e.out, "    | %s\n", line)
	}
}

// configMap returns the live ConfigMap's data and annotations.
func (e *devEnv) configMap(ctx context.Context) (map[string]string, map[string]string, error) {
	cm, err := e.admin.CoreV1().ConfigMaps(demoNamespace).Get(ctx, demoConfigMap, metav1.GetOptions{})
	if err != nil {
		return nil, nil, err
	}
	return cm.Data, cm.Annotations, nil
}

func (e *devEnv) status(ctx context.Context) (reconciler.Status, error) {
	s, found, err := reconciler.ReadSourceStatus(ctx, e.dynamic, v1alpha1.DefaultNamespace, devSource)
	if err == nil && !found {
		err = fmt.Errorf("no status for source %s yet", devSource)
	}
	return s, err
}

func (e *devEnv) stepInitialSync(ctx context.Context) error {
	err := harness.Poll(ctx, 2*time.Minute, func() error {
		data, _, err := e.configMap(ctx)
		if err != nil {
			return err
		}
		if data["POOL_SIZE"] != "50" {
			return fmt.Errorf("POOL_SIZE is %q", data["POOL_SIZE"])
		}
		return nil
	})
	if err != nil {
		return err
	}
	s, err := e.status(ctx)
	if err != nil {
		return err
	}
	e.observed("source %s applied %s (%q); %d objects managed; %s/%s has POOL_SIZE=50", devSource, short(s.Revision), s.Subject, s.ObjectsManaged, demoNamespace, demoConfigMap)
	return nil
}

func (e *devEnv) stepBobEdits(ctx context.Context) error {
	editor := filepath.Join(e.dir, "raise-pool-size.sh")
	script := "#!/bin/sh\nsed -i -e 's/POOL_SIZE: \"50\"/POOL_SIZE: \"80\"/' \"$1\"\n"
	if err := os.WriteFile(editor, []byte(script), 0o755); err != nil {
		return err
	}
	r := e.cp.Bob.KubectlWith(ctx, nil, []string{"KUBE_EDITOR=" + editor}, "edit", "-n", demoNamespace, "configmap/"+demoConfigMap)
	if r.Err == nil {
		return fmt.Errorf("kubectl edit by bob succeeded:\n%s", r.Combined())
	}
	msg := r.Combined()
	if i := strings.Index(msg, "driftless: "); i >= 0 {
		msg = msg[i:]
	}
	if !strings.Contains(msg, "driftless: bob may not update configmaps/"+demoConfigMap) || !strings.Contains(msg, "Ways forward") {
		return fmt.Errorf("the denial is not the guard's actionable message:\n%s", r.Combined())
	}
	e.observed("denied at admission; kubectl printed:")
	for _, tail := range []string{"\nA copy of your changes", "\nYou can run `kubectl replace"} {
		if i := strings.Index(msg, tail); i >= 0 {
			msg = msg[:i]
		}
	}
	e.quote(msg)
	data, _, err := e.configMap(ctx)
	if err != nil {
		return err
	}
	if data["POOL_SIZE"] != "50" {
		return fmt.Errorf("POOL_SIZE changed to %q", data["POOL_SIZE"])
	}
	e.observed("POOL_SIZE is still 50")
	return nil
}

func (e *devEnv) driftless(ctx context.Context, u *harness.User, args ...string) (string, error) {
	cmd := NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(append(args, "--kubeconfig", u.Kubeconfig))
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

func (e *devEnv) stepBobSelfGrants(ctx context.Context) error {
	out, err := e.driftless(ctx, e.cp.Bob, "break-glass", "-n", demoNamespace, "configmap/"+demoConfigMap, "--reason", "INC-123: raise pool size", "--for", "10m")
	if err == nil {
		return fmt.Errorf("driftless break-glass by bob succeeded:\n%s", out)
	}
	e.observed("driftless break-glass refused: %v", err)
	until := time.Now().Add(10 * time.Minute).UTC().Format(time.RFC3339)
	r := e.cp.Bob.Kubectl(ctx, "annotate", "-n", demoNamespace, "configmap/"+demoConfigMap,
		v1alpha1.AnnotationBreakGlass+"=INC-123", v1alpha1.AnnotationBreakGlassUntil+"="+until)
	if r.Err == nil || !strings.Contains(r.Combined(), "is not in a break-glass group") {
		return fmt.Errorf("bob's kubectl annotate was not denied by the guard:\n%s", r.Combined())
	}
	e.observed("kubectl annotate with the break-glass annotations denied by the guard: bob is not in a break-glass group")
	return nil
}

func (e *devEnv) stepAliceBreaksGlass(ctx context.Context, d time.Duration) error {
	out, err := e.driftless(ctx, e.cp.Alice, "break-glass", "-n", demoNamespace, "configmap/"+demoConfigMap, "--reason", "INC-123: raise pool size", "--for", d.String())
	if err != nil {
		return fmt.Errorf("alice's break-glass failed: %w\n%s", err, out)
	}
	e.quote(out)
	r := e.cp.Alice.Kubectl(ctx, "patch", "-n", demoNamespace, "configmap/"+demoConfigMap, "--type=merge", "-p", `{"data":{"POOL_SIZE":"80","BURST_MODE":"on"}}`)
	if r.Err != nil {
		return fmt.Errorf("alice's change under break-glass was denied:\n%s", r.Combined())
	}
	data, _, err := e.configMap(ctx)
	if err != nil {
		return err
	}
	if data["POOL_SIZE"] != "80" || data["BURST_MODE"] != "on" {
		return fmt.Errorf("live data is %v", data)
	}
	e.observed("alice's kubectl patch was allowed: POOL_SIZE=80, BURST_MODE=on")
	return nil
}

func (e *devEnv) stepDiffRecorded(ctx context.Context) error {
	var entry reconciler.BreakGlassObject
	err := harness.Poll(ctx, time.Minute, func() error {
		s, err := e.status(ctx)
		if err != nil {
			return err
		}
		for _, bg := range s.BreakGlass {
			if strings.Contains(bg.Object, demoConfigMap) && strings.Contains(bg.Patch, "80") {
				entry = bg
				return nil
			}
		}
		return fmt.Errorf("the status lists no break-glass diff for %s yet", demoConfigMap)
	})
	if err != nil {
		return err
	}
	data, _, err := e.configMap(ctx)
	if err != nil {
		return err
	}
	if data["POOL_SIZE"] != "80" {
		return fmt.Errorf("the reconciler reverted the object during the break-glass: POOL_SIZE=%q", data["POOL_SIZE"])
	}
	e.observed("the object is left as alice set it (%s by %s until %s)", entry.Object, entry.By, entry.Until.UTC().Format(time.RFC3339))
	out, err := e.driftless(ctx, e.cp.Admin, "break-glass", "--list")
	if err != nil {
		return fmt.Errorf("driftless break-glass --list: %w\n%s", err, out)
	}
	e.observed("driftless break-glass --list:")
	e.quote(out)
	out, err = e.driftless(ctx, e.cp.Admin, "status")
	if err != nil {
		return fmt.Errorf("driftless status: %w\n%s", err, out)
	}
	if !strings.Contains(out, "break-glass: ConfigMap production/"+demoConfigMap+" by alice") {
		return fmt.Errorf("driftless status does not show the break-glass:\n%s", out)
	}
	e.observed("driftless status:")
	e.quote(out)
	return nil
}

func (e *devEnv) stepExpiry(ctx context.Context, d time.Duration) error {
	err := harness.Poll(ctx, d+time.Minute, func() error {
		data, annotations, err := e.configMap(ctx)
		if err != nil {
			return err
		}
		if data["POOL_SIZE"] != "50" || data["BURST_MODE"] != "" || annotations[v1alpha1.AnnotationBreakGlass] != "" {
			return fmt.Errorf("not reverted yet: data %v, break-glass %q", data, annotations[v1alpha1.AnnotationBreakGlass])
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.observed("reverted to Git: POOL_SIZE=50, BURST_MODE removed, break-glass annotations removed")
	var note string
	err = harness.Poll(ctx, 30*time.Second, func() error {
		events, err := e.admin.EventsV1().Events(demoNamespace).List(ctx, metav1.ListOptions{FieldSelector: "reason=BreakGlassExpired,regarding.name=" + demoConfigMap})
		if err != nil {
			return err
		}
		if len(events.Items) == 0 {
			return fmt.Errorf("no BreakGlassExpired event yet")
		}
		note = events.Items[len(events.Items)-1].Note
		return nil
	})
	if err != nil {
		return err
	}
	e.observed("Event BreakGlassExpired on the ConfigMap:")
	e.quote(note)
	return nil
}

func (e *devEnv) stepCommit(ctx context.Context) error {
	patch := filepath.Join(e.repoDir, "overlays", "production", "configmap-patch.yaml")
	data, err := os.ReadFile(patch)
	if err != nil {
		return err
	}
	changed := strings.Replace(string(data), `POOL_SIZE: "50"`, `POOL_SIZE: "80"`, 1)
	if changed == string(data) {
		return fmt.Errorf("%s does not set POOL_SIZE \"50\"", patch)
	}
	if err := os.WriteFile(patch, []byte(changed), 0o644); err != nil {
		return err
	}
	sha, err := e.commit("Raise the payment gateway pool size to 80 (INC-123)", "Alice Oncall")
	if err != nil {
		return err
	}
	e.observed("committed %s to the local repository", short(sha))
	err = harness.Poll(ctx, time.Minute, func() error {
		cm, err := e.admin.CoreV1().ConfigMaps(demoNamespace).Get(ctx, demoConfigMap, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return err
		}
		if err != nil {
			return err
		}
		if cm.Data["POOL_SIZE"] != "80" || cm.Annotations[v1alpha1.AnnotationRevision] != sha {
			return fmt.Errorf("POOL_SIZE=%q at revision %q", cm.Data["POOL_SIZE"], cm.Annotations[v1alpha1.AnnotationRevision])
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.observed("the reconciler applied it: POOL_SIZE=80, driftless.dev/revision=%s", short(sha))
	return nil
}
