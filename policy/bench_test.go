package policy

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// loop runs f b.N times, timing each call, and reports the p50 and p99
// latency next to the usual ns/op, and cpu-ns/op: the CPU time of the whole
// process (every thread, garbage collection included) per call, which a
// busy machine disturbs less than the wall time.
func loop(b *testing.B, f func() error) {
	b.Helper()
	samples := make([]time.Duration, 0, 1024)
	b.ReportAllocs()
	cpuStart := processCPU(b)
	for b.Loop() {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(start))
	}
	if len(samples) == 0 {
		return
	}
	b.ReportMetric(float64((processCPU(b)-cpuStart).Nanoseconds())/float64(len(samples)), "cpu-ns/op")
	slices.Sort(samples)
	pct := func(p float64) float64 {
		return float64(samples[min(len(samples)-1, int(float64(len(samples))*p))].Nanoseconds())
	}
	b.ReportMetric(pct(0.50), "p50-ns")
	b.ReportMetric(pct(0.99), "p99-ns")
}

// processCPU returns the user and system CPU time the process has used.
func processCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEvaluate measures one object against the whole built-in library,
// as the admission webhook does per request. admitted-deployment is a 5 KiB
// Deployment as admission sees it, with managedFields and status.
func BenchmarkEvaluate(b *testing.B) {
	e := loadEngine(b, Options{Parameters: libraryParams()})
	ec := EvalContext{Source: "apps", Environment: "production", Operation: "UPDATE", User: User{Username: "alice", Groups: []string{"dev"}}}
	objs := map[string]map[string]any{
		"compliant-deployment": manifest(b, "deployment.yaml"),
		"violating-deployment": benchEverythingWrong(b),
		"admitted-deployment":  manifest(b, "deployment-admitted.yaml"),
		"configmap":            manifest(b, "configmap.yaml"),
	}
	for _, name := range []string{"compliant-deployment", "violating-deployment", "admitted-deployment", "configmap"} {
		obj := objs[name]
		b.Run(name, func(b *testing.B) {
			loop(b, func() error {
				_, err := e.Evaluate(context.Background(), obj, ec)
				return err
			})
		})
	}
}

func benchEverythingWrong(b *testing.B) map[string]any {
	d := manifest(b, "deployment.yaml")
	for path, v := range map[string]any{
		"metadata.labels":                                 remove{},
		"spec.replicas":                                   1,
		"spec.template.spec.hostNetwork":                  true,
		"spec.template.spec.securityContext":              remove{},
		"spec.template.spec.containers.0.image":           "nginx:latest",
		"spec.template.spec.containers.0.resources":       remove{},
		"spec.template.spec.containers.0.readinessProbe":  remove{},
		"spec.template.spec.containers.0.securityContext": map[string]any{"privileged": true},
	} {
		d = setPath(b, d, path, v)
	}
	return d
}

// revision returns n objects cycling through the test manifests with
// distinct names, like a rendered kustomize overlay.
func revision(b *testing.B, n int) []map[string]any {
	var base []map[string]any
	for _, k := range workloadKinds() {
		base = append(base, manifest(b, k.file))
	}
	base = append(base, manifest(b, "configmap.yaml"), manifest(b, "sealedsecret.yaml"))
	objs := make([]map[string]any, n)
	for i := range objs {
		objs[i] = setPath(b, base[i%len(base)], "metadata.name", fmt.Sprintf("obj-%d", i))
	}
	return objs
}

// overlay returns the objects of a typical rendered overlay: 980
// ConfigMaps, 10 Deployments and 10 Services, with distinct names.
func overlay(b *testing.B) []map[string]any {
	var objs []map[string]any
	for i, n := range []int{980, 10, 10} {
		file := []string{"configmap.yaml", "deployment.yaml", "service.yaml"}[i]
		for j := range n {
			objs = append(objs, setPath(b, manifest(b, file), "metadata.name", fmt.Sprintf("obj-%d-%d", i, j)))
		}
	}
	return objs
}

// BenchmarkEvaluateAll measures a 1,000-object revision against the whole
// library, as the reconciler gates a sync: objects=1000 cycles through the
// eight workload kinds, a ConfigMap and a SealedSecret (80% workloads);
// overlay=1000 is 980 ConfigMaps, 10 Deployments and 10 Services.
func BenchmarkEvaluateAll(b *testing.B) {
	e := loadEngine(b, Options{Parameters: libraryParams()})
	ec := EvalContext{Source: "apps", Environment: "production"}
	for _, rev := range []struct {
		name string
		objs []map[string]any
	}{{"objects=1000", revision(b, 1000)}, {"overlay=1000", overlay(b)}} {
		objs := rev.objs
		b.Run(rev.name, func(b *testing.B) {
			loop(b, func() error {
				_, err := e.EvaluateAll(context.Background(), objs, ec)
				return err
			})
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(objs)), "ns/object")
		})
	}
}

// generatedPolicy is one conftest-style policy file with its own rules.
func generatedPolicy(i int) string {
	return fmt.Sprintf(`package main

forbidden_%[1]d := {"forbidden-%[1]d.example.com", "blocked-%[1]d.example.com"}

deny contains msg if {
	input.kind == "Deployment"
	some c in input.spec.template.spec.containers
	registry := split(c.image, "/")[0]
	registry in forbidden_%[1]d
	msg := sprintf("policy %[1]d: container %%s uses forbidden registry %%s", [c.name, registry])
}

warn contains msg if {
	input.metadata.labels["policy-%[1]d"] == "legacy"
	msg := sprintf("policy %[1]d: %%s is marked legacy", [input.metadata.name])
}
`, i)
}

// BenchmarkLoad measures Load (read, parse, compile, prepare) for growing
// numbers of user policy files, without and with the built-in library.
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{1, 10, 50, 200} {
		dir := b.TempDir()
		for i := range n {
			writeFile(b, dir, fmt.Sprintf("p%03d.rego", i), generatedPolicy(i))
		}
		for _, lib := range []bool{false, true} {
			b.Run(fmt.Sprintf("policies=%d/library=%v", n, lib), func(b *testing.B) {
				opts := Options{DisableLibrary: !lib, Paths: []string{dir}, Parameters: libraryParams()}
				e := New()
				loop(b, func() error { return e.Load(context.Background(), opts) })
			})
		}
	}
}

// BenchmarkPreparedVsUnprepared compares the engine's prepared query with
// building and compiling a rego.Rego per call (rego.New(...).Eval), both over
// the whole library plus one conftest policy.
func BenchmarkPreparedVsUnprepared(b *testing.B) {
	opts := Options{Parameters: libraryParams(), Paths: []string{filepath.Join("testdata", "conftest")}}
	obj := manifest(b, "deployment.yaml")
	ec := EvalContext{Environment: "production"}

	b.Run("prepared", func(b *testing.B) {
		e := loadEngine(b, opts)
		loop(b, func() error {
			_, err := e.Evaluate(context.Background(), obj, ec)
			return err
		})
	})

	b.Run("unprepared", func(b *testing.B) {
		e := loadEngine(b, opts)
		rules, err := e.Rules()
		if err != nil {
			b.Fatal(err)
		}
		query, err := buildQuery(rules, nil)
		if err != nil {
			b.Fatal(err)
		}
		srcs, err := librarySources(func(string) bool { return true }, false)
		if err != nil {
			b.Fatal(err)
		}
		user, err := readPaths(opts.Paths)
		if err != nil {
			b.Fatal(err)
		}
		var modules []func(*rego.Rego)
		for _, s := range append(srcs, user...) {
			if !s.test {
				modules = append(modules, rego.Module(s.name, s.content))
			}
		}
		modules = append(modules, rego.Module(contextModuleName, contextModule), contextFunction())
		loop(b, func() error {
			store, err := newStore(opts.Parameters, false)
			if err != nil {
				return err
			}
			args := append([]func(*rego.Rego){
				rego.Query(query.String()),
				rego.Store(store),
				rego.Input(obj),
				rego.SetRegoVersion(ast.RegoV1),
			}, modules...)
			ctx := withEvalContext(context.Background(), ec.term())
			rs, err := rego.New(args...).Eval(ctx)
			if err == nil && len(rs) != 1 {
				err = fmt.Errorf("got %d results", len(rs))
			}
			return err
		})
	})
}

// contextPolicy reads the object, the parameters and the context.
const contextPolicy = `package main

deny contains msg if {
	input.kind == "Deployment"
	CTX.environment == "production"
	not input.spec.replicas >= data.driftless.parameters.min_replicas
	msg := sprintf("%s: too few replicas for %s", [input.metadata.name, CTX.user.username])
}
`

// BenchmarkContextDelivery measures the ways data.driftless.context can reach
// a prepared query; doc.go records why the engine uses "with".
func BenchmarkContextDelivery(b *testing.B) {
	obj := setPath(b, manifest(b, "deployment.yaml"), "spec.replicas", 1)
	ec := EvalContext{Environment: "production", User: User{Username: "alice"}}
	params := map[string]any{"min_replicas": 2}
	ctx := context.Background()
	prepare := func(b *testing.B, policy, query string) rego.PreparedEvalQuery {
		b.Helper()
		store, err := newStore(params, true)
		if err != nil {
			b.Fatal(err)
		}
		pq, err := rego.New(
			rego.Query(query),
			rego.Module("p.rego", policy),
			rego.Store(store),
			rego.SetRegoVersion(ast.RegoV1),
		).PrepareForEval(ctx)
		if err != nil {
			b.Fatal(err)
		}
		return pq
	}
	check := func(rs rego.ResultSet, err error) error {
		if err != nil {
			return err
		}
		if len(rs) != 1 {
			return fmt.Errorf("got %d results", len(rs))
		}
		return nil
	}
	policy := strings.ReplaceAll(contextPolicy, "CTX", "data.driftless.context")

	b.Run("engine-builtin-backed-document", func(b *testing.B) {
		dir := b.TempDir()
		writeFile(b, dir, "p.rego", policy)
		e := loadEngine(b, Options{DisableLibrary: true, Paths: []string{dir}, Parameters: params})
		loop(b, func() error {
			res, err := e.Evaluate(ctx, obj, ec)
			if err == nil && len(res.Violations) != 1 {
				err = fmt.Errorf("got %v", res.Violations)
			}
			return err
		})
	})

	b.Run("with-modifiers", func(b *testing.B) {
		pq := prepare(b, policy,
			`o := input.object; c := input.context; r := [[x | x := data.main.deny]] with input as o with data.driftless.context as c`)
		loop(b, func() error {
			v, err := ast.InterfaceToValue(obj)
			if err != nil {
				return err
			}
			input := ast.NewObject(ast.Item(ast.StringTerm("object"), ast.NewTerm(v)), ast.Item(ast.StringTerm("context"), ec.term()))
			return check(pq.Eval(ctx, rego.EvalParsedInput(input)))
		})
	})

	b.Run("store-write-per-eval", func(b *testing.B) {
		store := inmem.NewFromObject(map[string]any{"driftless": map[string]any{"parameters": params, "context": map[string]any{}}})
		pq, err := rego.New(
			rego.Query(`r := [[x | x := data.main.deny]]`),
			rego.Module("p.rego", policy),
			rego.Store(store),
			rego.SetRegoVersion(ast.RegoV1),
		).PrepareForEval(ctx)
		if err != nil {
			b.Fatal(err)
		}
		ctxValue := map[string]any{"environment": ec.Environment, "user": map[string]any{"username": ec.User.Username, "groups": []any{}}}
		path, ok := storage.ParsePath("/driftless/context")
		if !ok {
			b.Fatal("bad store path")
		}
		loop(b, func() error {
			// Write transactions are exclusive: concurrent evaluations queue.
			txn, err := store.NewTransaction(ctx, storage.WriteParams)
			if err != nil {
				return err
			}
			defer store.Abort(ctx, txn)
			if err := store.Write(ctx, txn, storage.ReplaceOp, path, ctxValue); err != nil {
				return err
			}
			v, err := ast.InterfaceToValue(obj)
			if err != nil {
				return err
			}
			return check(pq.Eval(ctx, rego.EvalParsedInput(v), rego.EvalTransaction(txn)))
		})
	})

	b.Run("no-context-baseline", func(b *testing.B) {
		pq := prepare(b, strings.ReplaceAll(contextPolicy, "CTX", `{"environment": "production", "user": {"username": "alice"}}`),
			`r := [[x | x := data.main.deny]]`)
		loop(b, func() error {
			v, err := ast.InterfaceToValue(obj)
			if err != nil {
				return err
			}
			return check(pq.Eval(ctx, rego.EvalParsedInput(v)))
		})
	})
}

// BenchmarkEngineVsOPA compares Evaluate with raw OPA: the same library
// modules prepared once with rego.PrepareForEval and evaluated per object with
// one query over every rule, the object converted to a Rego value per call
// (as rego.EvalInput does). The ratio engine/opa is the engine's overhead, or
// saving, over using OPA directly.
func BenchmarkEngineVsOPA(b *testing.B) {
	params := libraryParams()
	ec := EvalContext{Source: "apps", Environment: "production", Operation: "UPDATE", User: User{Username: "alice", Groups: []string{"dev"}}}
	e := loadEngine(b, Options{Parameters: params})
	pq := rawOPA(b, params)
	ctx := context.Background()
	for _, name := range []string{"configmap.yaml", "deployment-admitted.yaml"} {
		obj := manifest(b, name)
		b.Run(strings.TrimSuffix(name, ".yaml")+"/engine", func(b *testing.B) {
			loop(b, func() error {
				_, err := e.Evaluate(ctx, obj, ec)
				return err
			})
		})
		b.Run(strings.TrimSuffix(name, ".yaml")+"/opa", func(b *testing.B) {
			evalCtx := withEvalContext(ctx, ec.term())
			loop(b, func() error {
				input, err := ast.InterfaceToValue(obj)
				if err != nil {
					return err
				}
				rs, err := pq.Eval(evalCtx, rego.EvalParsedInput(input))
				if err == nil && len(rs) != 1 {
					err = fmt.Errorf("got %d results", len(rs))
				}
				return err
			})
		})
	}
}

// rawOPA prepares the embedded library with OPA's own API, without the
// engine: every library rule in one query, the parameters in the store.
func rawOPA(b *testing.B, params map[string]any) rego.PreparedEvalQuery {
	b.Helper()
	lib, err := Library()
	if err != nil {
		b.Fatal(err)
	}
	var rules []RuleRef
	for _, r := range lib {
		rules = append(rules, RuleRef{Package: r.Package(), Rule: "deny", Severity: SeverityDeny})
	}
	query, err := buildQuery(rules, nil)
	if err != nil {
		b.Fatal(err)
	}
	srcs, err := librarySources(func(string) bool { return true }, false)
	if err != nil {
		b.Fatal(err)
	}
	args := []func(*rego.Rego){
		rego.ParsedQuery(query),
		rego.Store(inmem.NewFromObject(map[string]any{"driftless": map[string]any{"parameters": params}})),
		rego.SetRegoVersion(ast.RegoV1),
		rego.Module(contextModuleName, contextModule),
		contextFunction(),
	}
	for _, s := range srcs {
		args = append(args, rego.Module(s.name, s.content))
	}
	pq, err := rego.New(args...).PrepareForEval(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return pq
}
