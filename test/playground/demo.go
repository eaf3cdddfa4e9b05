package playground

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler"
	"github.com/driftless-dev/driftless/test/harness"
)

const (
	demoNamespace = "production"
	demoConfigMap = "payment-gateway-config"
	// settle bounds how long a step waits for an effect it caused or a sync to show.
	settle = 2 * time.Minute
)

// demo runs the incident story on the playground and checks every step. Every step waits for
// the state it expects (the reconciler, the status and Events are asynchronous); it never
// reads once after a change.
func (e *env) demo(ctx context.Context, breakGlassFor time.Duration) error {
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
			return fmt.Errorf("demo step %d (%s) did not behave as narrated: %w", i+1, s.title, err)
		}
	}
	fmt.Fprintln(e.out, "\nThe story held at every step.")
	if e.keepDir {
		fmt.Fprintf(e.out, "The reconciler's log is in %s.\n", e.logPath)
	} else {
		fmt.Fprintln(e.out, "The playground's directory, the reconciler's log included, is removed on exit; run bin/driftless-dev --demo --keep to keep it.")
	}
	return nil
}

// waitFor polls f until it returns nil; the error names what it waited for and f's last
// complaint.
func (e *env) waitFor(ctx context.Context, what string, timeout time.Duration, f func() error) error {
	if err := harness.Poll(ctx, timeout, f); err != nil {
		return fmt.Errorf("waiting for %s: %w", what, err)
	}
	return nil
}

func (e *env) observed(format string, args ...any) {
	fmt.Fprintf(e.out, "    observed: "+format+"\n", args...)
}

func (e *env) quote(text string) {
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		fmt.Fprintf(e.out, "    | %s\n", line)
	}
}

// configMap returns the live ConfigMap's data and annotations.
func (e *env) configMap(ctx context.Context) (map[string]string, map[string]string, error) {
	cm, err := e.admin.CoreV1().ConfigMaps(demoNamespace).Get(ctx, demoConfigMap, metav1.GetOptions{})
	if err != nil {
		return nil, nil, err
	}
	return cm.Data, cm.Annotations, nil
}

// waitData waits until the live ConfigMap's data has the values in want ("" for a key that
// must be absent) and returns its data and annotations.
func (e *env) waitData(ctx context.Context, what string, timeout time.Duration, want map[string]string) (map[string]string, map[string]string, error) {
	var data, annotations map[string]string
	err := e.waitFor(ctx, what, timeout, func() error {
		var err error
		if data, annotations, err = e.configMap(ctx); err != nil {
			return err
		}
		for k, v := range want {
			if data[k] != v {
				return fmt.Errorf("%s/%s has %s=%q, want %q", demoNamespace, demoConfigMap, k, data[k], v)
			}
		}
		return nil
	})
	return data, annotations, err
}

// status waits until the source's status satisfies ok and returns it.
func (e *env) status(ctx context.Context, what string, ok func(reconciler.Status) error) (reconciler.Status, error) {
	var s reconciler.Status
	err := e.waitFor(ctx, what, settle, func() error {
		var (
			found bool
			err   error
		)
		s, found, err = reconciler.ReadSourceStatus(ctx, e.dynamic, v1alpha1.DefaultNamespace, source)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("no status for source %s yet", source)
		}
		return ok(s)
	})
	return s, err
}

// driftless runs the driftless binary as u and returns its output; a failure's error is the
// message the command printed.
func (e *env) driftless(ctx context.Context, u *harness.User, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, e.driftlessBin, append(args, "--kubeconfig", u.Kubeconfig)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		msg := strings.TrimPrefix(lines[len(lines)-1], "driftless: ")
		return string(out), fmt.Errorf("%s (%w)", msg, err)
	}
	return string(out), nil
}

func (e *env) stepInitialSync(ctx context.Context) error {
	if _, _, err := e.waitData(ctx, "the first sync to set POOL_SIZE=50", settle, map[string]string{"POOL_SIZE": "50"}); err != nil {
		return err
	}
	s, err := e.status(ctx, "the status of the first sync", func(s reconciler.Status) error {
		if s.Revision == "" || s.ObjectsManaged == 0 {
			return fmt.Errorf("status has revision %q and %d objects managed", s.Revision, s.ObjectsManaged)
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.observed("source %s applied %s (%q); %d objects managed; %s/%s has POOL_SIZE=50", source, short(s.Revision), s.Subject, s.ObjectsManaged, demoNamespace, demoConfigMap)
	return nil
}

func (e *env) stepBobEdits(ctx context.Context) error {
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
	// The denial was synchronous: nothing was written, so the live object still has Git's value.
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

func (e *env) stepBobSelfGrants(ctx context.Context) error {
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

func (e *env) stepAliceBreaksGlass(ctx context.Context, d time.Duration) error {
	out, err := e.driftless(ctx, e.cp.Alice, "break-glass", "-n", demoNamespace, "configmap/"+demoConfigMap, "--reason", "INC-123: raise pool size", "--for", d.String())
	if err != nil {
		return fmt.Errorf("alice's break-glass failed: %w\n%s", err, out)
	}
	e.quote(out)
	r := e.cp.Alice.Kubectl(ctx, "patch", "-n", demoNamespace, "configmap/"+demoConfigMap, "--type=merge", "-p", `{"data":{"POOL_SIZE":"80","BURST_MODE":"on"}}`)
	if r.Err != nil {
		return fmt.Errorf("alice's change under break-glass was denied:\n%s", r.Combined())
	}
	if _, _, err := e.waitData(ctx, "alice's patch to show", settle, map[string]string{"POOL_SIZE": "80", "BURST_MODE": "on"}); err != nil {
		return err
	}
	e.observed("alice's kubectl patch was allowed: POOL_SIZE=80, BURST_MODE=on")
	return nil
}

func (e *env) stepDiffRecorded(ctx context.Context) error {
	var entry reconciler.BreakGlassObject
	_, err := e.status(ctx, "the status to list the break-glass diff of "+demoConfigMap, func(s reconciler.Status) error {
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
	// The status was written after a sync that saw the break-glass: the object must still be
	// as alice set it.
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
	want := "break-glass: ConfigMap production/" + demoConfigMap + " by alice"
	err = e.waitFor(ctx, "driftless status to show the break-glass", settle, func() error {
		if out, err = e.driftless(ctx, e.cp.Admin, "status"); err != nil {
			return fmt.Errorf("driftless status: %w\n%s", err, out)
		}
		if !strings.Contains(out, want) {
			return fmt.Errorf("driftless status does not show %q:\n%s", want, out)
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.observed("driftless status:")
	e.quote(out)
	return nil
}

func (e *env) stepExpiry(ctx context.Context, d time.Duration) error {
	err := e.waitFor(ctx, "the reconciler to revert the object to Git at expiry", d+settle, func() error {
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
	err = e.waitFor(ctx, "the BreakGlassExpired Event on "+demoConfigMap, settle, func() error {
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

func (e *env) stepCommit(ctx context.Context) error {
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
	err = e.waitFor(ctx, "the reconciler to apply commit "+short(sha), settle, func() error {
		data, annotations, err := e.configMap(ctx)
		if err != nil {
			return err
		}
		if data["POOL_SIZE"] != "80" || annotations[v1alpha1.AnnotationRevision] != sha {
			return fmt.Errorf("POOL_SIZE=%q at revision %q", data["POOL_SIZE"], annotations[v1alpha1.AnnotationRevision])
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.observed("the reconciler applied it: POOL_SIZE=80, driftless.dev/revision=%s", short(sha))
	return nil
}

// short abbreviates a commit id.
func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
