package ui

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/driftless-dev/driftless/test/harness"
)

var update = flag.Bool("update", false, "write the screenshots to docs/ui")

const (
	namespace = "production"
	configMap = "payment-gateway-config"
	// object is how the view names the ConfigMap.
	object = "ConfigMap " + namespace + "/" + configMap
)

// startUI runs `driftless ui --no-open` as user (its kubeconfig) and returns the link it
// prints. The server stops with the test, and must stop cleanly on an interrupt.
func startUI(t *testing.T, user *harness.User) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	cmd := exec.CommandContext(ctx, driftlessBin, "ui", "--no-open", "--kubeconfig", user.Kubeconfig)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	links := make(chan string, 1)
	var printed bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			printed.WriteString(line + "\n")
			if s := strings.TrimSpace(line); strings.HasPrefix(s, "http://127.0.0.1:") && strings.Contains(s, "/?token=") {
				links <- s
			}
		}
		close(links)
	}()
	t.Cleanup(func() {
		cancel()
		// Wait reports the cancellation even when the interrupt ended the server cleanly.
		if err := cmd.Wait(); err != nil && !(errors.Is(err, context.Canceled) && cmd.ProcessState.Success()) {
			t.Errorf("driftless ui did not stop cleanly on an interrupt: %v\n%s", err, stderr.String())
		}
	})
	select {
	case link, ok := <-links:
		if !ok {
			t.Fatalf("driftless ui printed no link:\n%s\n%s", printed.String(), stderr.String())
		}
		return link
	case <-time.After(time.Minute):
		t.Fatalf("driftless ui printed no link within a minute:\n%s", stderr.String())
	}
	return ""
}

// browser is a headless Chromium tab that records every request the page makes.
type browser struct {
	t        *testing.T
	ctx      context.Context
	mu       sync.Mutex
	requests []string
	loads    int
	shots    map[string][]byte
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.WithoutCancel(t.Context()), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, shots: map[string][]byte{}}
	err := chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			b.requests = append(b.requests, e.Request.URL)
		case *page.EventFrameNavigated:
			if e.Frame.ParentID == "" {
				b.loads++
			}
		}
	})
	if err != nil {
		t.Fatalf("start Chromium (%s): %v", chromium, err)
	}
	return b
}

// do runs actions, failing the test with what the page shows when one fails.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\nthe page shows:\n%s", what, err, b.text())
	}
}

// text returns what the page's main element shows.
func (b *browser) text() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("main") ? document.querySelector("main").innerText : document.body.innerText`))
	if err != nil {
		return fmt.Sprintf("(cannot read the page: %v)", err)
	}
	return s
}

// waitFor polls the JavaScript condition in the page until it holds; it never reloads.
func (b *browser) waitFor(what, condition string, timeout time.Duration) {
	b.t.Helper()
	// The poll's own timeout runs in the page; the context's bounds the wait even when the
	// page's timers lag.
	ctx, cancel := context.WithTimeout(b.ctx, timeout+15*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](condition, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(200*time.Millisecond)))
	if err != nil {
		b.t.Fatalf("waiting for %s: %v\nthe page shows:\n%s", what, err, b.text())
	}
}

// eval evaluates a JavaScript expression.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// screenshot captures the 1280×800 viewport as name.png.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(shot))
	if err != nil || cfg.Width != 1280 || cfg.Height != 800 {
		b.t.Fatalf("screenshot %s: %dx%d (%v), want a 1280x800 PNG", name, cfg.Width, cfg.Height, err)
	}
	b.shots[name] = shot
}

// checkRequests fails the test for every request the page made that went anywhere but
// origin, and returns how many went to its API.
func (b *browser) checkRequests(origin string) (api int) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, u := range b.requests {
		if !strings.HasPrefix(u, origin+"/") {
			b.t.Errorf("the page requested %s: every request must go to %s", u, origin)
		}
		if strings.HasPrefix(u, origin+"/api/") {
			api++
		}
	}
	return api
}

// js quotes s as a JavaScript string.
func js(s string) string { return strconv.Quote(s) }

// TestWebView: the page loads from 127.0.0.1 only; bob's denied kubectl edit shows in the
// ledger without a reload; alice's break-glass shows with who, why, the time left counting
// down and the patch to commit; the source's objects show her change as a diff.
func TestWebView(t *testing.T) {
	needBrowser(t)
	ctx := t.Context()
	cp := pg.ControlPlane()
	link := startUI(t, cp.Alice)
	origin := link[:strings.Index(link, "/?token=")]

	// The playground lets the on-call group read GitSources; this test starts without that,
	// to see the view follow an RBAC change.
	if r := cp.Admin.Kubectl(ctx, "delete", "clusterrolebinding", "playground-source-viewer"); r.Err != nil {
		t.Fatalf("remove the playground's source-viewer binding: %s", r.Combined())
	}
	b := newBrowser(t)
	// The one-time link logs the browser in and lands on the sources page without the token.
	// The view reads with alice's own RBAC: until she may read GitSources, it says so.
	b.do("open the link", chromedp.EmulateViewport(1280, 800), chromedp.Navigate(link))
	b.waitFor("the sources page to say alice may not list GitSources",
		`document.querySelector("#results .error") !== null && document.querySelector("#results .error").textContent.includes('cannot list resource "gitsources"')`, time.Minute)
	// The platform team binds the shipped viewer role to the on-call group; the page follows
	// without a reload.
	if r := cp.Admin.Kubectl(ctx, "create", "clusterrolebinding", "oncall-source-viewer", "--clusterrole=driftless-source-viewer", "--group="+harness.OncallGroup); r.Err != nil {
		t.Fatalf("bind driftless-source-viewer to the on-call group: %s", r.Combined())
	}
	b.waitFor("the sources page to show payments Ready",
		`document.querySelector('tr[data-source="payments"] .badge.ok') !== null`, 2*time.Minute)
	if loc := eval[string](b, "location.href"); strings.Contains(loc, "token") || !strings.HasPrefix(loc, origin+"/") {
		t.Errorf("after the login the page is at %q; want %s/ without the token", loc, origin)
	}
	if who := eval[string](b, `document.getElementById("who").textContent`); !strings.Contains(who, "alice") {
		t.Errorf("the header says %q; want it to name alice, whose kubeconfig the view reads with", who)
	}
	// The link works once: anyone else who saw it (in a process list, say) is refused.
	res, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("the link a second time: %d %s, want 403", res.StatusCode, body)
	}
	// The page has loaded: nothing it asked for left 127.0.0.1 (checked again at the end).
	b.checkRequests(origin)
	b.screenshot("sources")

	// A marker that a reload would wipe: every update from here on must come without one.
	b.do("mark the page", chromedp.Evaluate[chromedp.Void](`window.__noReload = "still here"`))
	b.mu.Lock()
	loadsAtMark := b.loads
	b.mu.Unlock()

	// The ledger, reached from the keyboard: focus the link and press Enter.
	b.do("open the ledger with the keyboard", chromedp.Focus(chromedp.CSS(`nav a[data-view="ledger"]`)), chromedp.KeyEvent("\r"))
	b.waitFor("the ledger page", `document.getElementById("title").textContent === "Ledger" && document.querySelector("#f-user") !== null`, 30*time.Second)

	// bob's kubectl edit is denied at admission.
	editor := filepath.Join(t.TempDir(), "raise-pool-size.sh")
	if err := os.WriteFile(editor, []byte("#!/bin/sh\nsed -i -e 's/POOL_SIZE: \"50\"/POOL_SIZE: \"80\"/' \"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := cp.Bob.KubectlWith(ctx, nil, []string{"KUBE_EDITOR=" + editor}, "edit", "-n", namespace, "configmap/"+configMap)
	if r.Err == nil || !strings.Contains(r.Combined(), "bob may not update configmaps/"+configMap) {
		t.Fatalf("bob's kubectl edit: err %v, want the guard's denial:\n%s", r.Err, r.Combined())
	}
	// The ledger writes its buffer every flush interval (10s by default); the page polls.
	b.waitFor("bob's denied attempt in the ledger",
		`[...document.querySelectorAll('tr[data-category="denied"][data-user="bob"]')].some(tr => tr.querySelector(".object").textContent.includes(`+js(configMap)+`))`, time.Minute)
	b.screenshot("ledger")

	// The filters: a user filter hides bob's attempt, and clearing it brings it back.
	clear := func(id string) chromedp.Action[chromedp.Void] {
		return chromedp.Evaluate[chromedp.Void](`document.getElementById(` + js(id) + `).value = ""`)
	}
	b.do("filter on alice", chromedp.SendKeys(chromedp.CSS("#f-user"), "alice"))
	b.waitFor("the user filter to hide bob", `location.hash.includes("user=alice") && document.querySelector('tr[data-user="bob"]') === null`, 30*time.Second)
	b.do("filter on bob", clear("f-user"), chromedp.SendKeys(chromedp.CSS("#f-user"), "bob"))
	b.waitFor("the user filter bob", `location.hash.includes("user=bob") && document.querySelector('tr[data-user="bob"]') !== null && document.querySelector('tr[data-user="alice"]') === null`, 30*time.Second)
	b.do("filter on another namespace", chromedp.SendKeys(chromedp.CSS("#f-namespace"), "staging"))
	b.waitFor("the namespace filter to hide bob's attempt in production", `location.hash.includes("namespace=staging") && document.querySelector('tr[data-user="bob"]') === null`, 30*time.Second)

	// alice breaks glass and raises the pool size.
	out, err := exec.CommandContext(ctx, driftlessBin, "break-glass", "--kubeconfig", cp.Alice.Kubeconfig, "-n", namespace,
		"configmap/"+configMap, "--reason", "INC-123: raise pool size", "--for", "20m").CombinedOutput()
	if err != nil {
		t.Fatalf("alice's break-glass: %v\n%s", err, out)
	}
	if r := cp.Alice.Kubectl(ctx, "patch", "-n", namespace, "configmap/"+configMap, "--type=merge", "-p", `{"data":{"POOL_SIZE":"80","BURST_MODE":"on"}}`); r.Err != nil {
		t.Fatalf("alice's change under break-glass: %s", r.Combined())
	}
	b.do("open the break-glass page", chromedp.Click(chromedp.CSS(`nav a[data-view="break-glass"]`)))
	session := `document.querySelector('article[data-session=` + js(object) + `]')`
	b.waitFor("alice's session with who, why, the time left and the patch", `(s => s !== null
		&& s.querySelector(".by").textContent.startsWith("alice")
		&& s.querySelector(".reason").textContent === "INC-123: raise pool size"
		&& /^(1[0-9]|20)m [0-9]+s left$/.test(s.querySelector(".countdown").textContent)
		&& /POOL_SIZE: "80"/.test(s.querySelector("pre").textContent)
		&& /BURST_MODE: "on"/.test(s.querySelector("pre").textContent))(`+session+`)`, 2*time.Minute)
	left := eval[string](b, session+`.querySelector(".countdown").textContent`)
	b.waitFor("the time left to count down", `(t => t !== `+js(left)+` && /m [0-9]+s left$/.test(t))(`+session+`.querySelector(".countdown").textContent)`, 30*time.Second)
	b.screenshot("break-glass")

	// The source's objects: the ConfigMap under break-glass, with alice's change as a diff.
	b.do("open the sources page", chromedp.Click(chromedp.CSS(`nav a[data-view="sources"]`)))
	b.waitFor("the sources page", `document.querySelector('tr[data-source="payments"] a') !== null`, 30*time.Second)
	b.do("open the payments source", chromedp.Click(chromedp.CSS(`tr[data-source="payments"] a`)))
	row := `document.querySelector('tr[data-object=` + js(object) + `]')`
	b.waitFor("the ConfigMap under break-glass with alice's change in its diff", `(r => r !== null
		&& r.querySelector(".badge").textContent === "break-glass"
		&& r.querySelector("details") !== null
		&& /\+\s+BURST_MODE: "on"/.test(r.querySelector("details pre").textContent)
		&& r.textContent.includes("kubectl-patch"))(`+row+`)`, time.Minute)
	b.do("open the diff", chromedp.Click(chromedp.CSS(`tr[data-object="`+object+`"] summary`)))
	b.waitFor("the diff to stay open across updates", row+`.querySelector("details").open`, 5*time.Second)
	b.screenshot("objects")

	// Everything above happened without a reload.
	if marker := eval[string](b, `String(window.__noReload)`); marker != "still here" {
		t.Errorf("the page was reloaded: the marker is %q", marker)
	}
	b.mu.Lock()
	loads, requests := b.loads, append([]string(nil), b.requests...)
	b.mu.Unlock()
	if loads != loadsAtMark {
		t.Errorf("the page navigated %d times after it loaded; want updates without a reload", loads-loadsAtMark)
	}

	// Nothing the page asked for left 127.0.0.1.
	if api := b.checkRequests(origin); api < 5 {
		t.Errorf("recorded %d requests to the view's API (%d in all); the recording missed the page's polling", api, len(requests))
	}
	t.Logf("%d requests, all to %s", len(requests), origin)

	if err := writeScreenshots(b.shots); err != nil {
		t.Error(err)
	}
}

// writeScreenshots writes the screenshots to docs/ui with -update.
func writeScreenshots(shots map[string][]byte) error {
	if !*update {
		return nil
	}
	root, err := harness.ModuleRoot()
	if err != nil {
		return err
	}
	dir := filepath.Join(root, "docs", "ui")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var errs []error
	for name, shot := range shots {
		errs = append(errs, os.WriteFile(filepath.Join(dir, name+".png"), shot, 0o644))
	}
	return errors.Join(errs...)
}
