package reconciler

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured/unstructuredscheme"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/openapi"
	"k8s.io/client-go/openapi3"
)

// predictor predicts, from a read of the live object alone, the object a sync's apply would
// leave: it takes over the live object's foreign fields as [applier.applyObject] does (the
// same [takeover.patch], applied to a copy) and merges the desired object into it with the
// API server's own server-side apply field manager (k8s.io/apimachinery's managedfields),
// typed with the schema the API server publishes (OpenAPI v3, readable by every
// authenticated user). It sends no write and no dry-run.
//
// What it cannot know, it leaves as the live object has it, or shows as a change: the API
// server's defaulting, mutating admission webhooks and validation do not run, so a value Git
// writes in another form than the API server stores (a quantity such as 1000m for 1) shows as
// a change the apply would not make. Without a schema for a kind, lists are atomic, so Git's
// lists replace the live ones whole (defaulted fields inside list items show as removed).
type predictor struct {
	// root serves the OpenAPI v3 schema of each group-version; nil uses none.
	root openapi3.Root
	mu   sync.Mutex
	// converters caches one type converter per group-version, and why there is none.
	converters map[schema.GroupVersion]typeConverter
}

// typeConverter is a group-version's type converter, or why it has none.
type typeConverter struct {
	tc     managedfields.TypeConverter
	reason string
}

// newPredictor returns a predictor that reads schemas from client; nil reads none.
func newPredictor(client openapi.Client) *predictor {
	p := &predictor{converters: map[schema.GroupVersion]typeConverter{}}
	if client != nil {
		p.root = openapi3.NewRoot(client)
	}
	return p
}

// converter returns the type converter of gv, built once from its published schema, and an
// empty reason; or the deduced converter (every list atomic) and why there is no schema.
func (p *predictor) converter(gv schema.GroupVersion) (managedfields.TypeConverter, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.converters[gv]; ok {
		return c.tc, c.reason
	}
	c := typeConverter{tc: managedfields.NewDeducedTypeConverter(), reason: "the API server's OpenAPI schema was not read"}
	if p.root != nil {
		if spec, err := p.root.GVSpec(gv); err != nil {
			c.reason = fmt.Sprintf("read the OpenAPI schema of %s: %v", gv, err)
		} else if spec.Components == nil || len(spec.Components.Schemas) == 0 {
			c.reason = fmt.Sprintf("the OpenAPI schema of %s has no types", gv)
		} else if tc, err := managedfields.NewTypeConverter(spec.Components.Schemas, false); err != nil {
			c.reason = fmt.Sprintf("the OpenAPI schema of %s: %v", gv, err)
		} else {
			c = typeConverter{tc: tc}
		}
	}
	p.converters[gv] = c
	return c.tc, c.reason
}

// predict returns the object that applying o over live would leave, as the reconciler applies
// (foreign fields taken over first, field manager driftless, conflicts forced, and taken over
// and applied once more when the result still has foreign fields), and why the prediction
// used no schema ("" when it did).
func (p *predictor) predict(o *object, live *unstructured.Unstructured, t takeover, now time.Time) (*unstructured.Unstructured, string, error) {
	gvk := o.ref.GroupVersionKind()
	tc, reason := p.converter(gvk.GroupVersion())
	res, err := applyLocally(tc, o, live, t, now)
	if err != nil && reason == "" {
		// The published schema rejects the live or the desired object; merge without it.
		reason = fmt.Sprintf("the OpenAPI schema of %s does not fit the object: %v", gvk.GroupVersion(), err)
		res, err = applyLocally(managedfields.NewDeducedTypeConverter(), o, live, t, now)
	}
	if err != nil {
		return nil, reason, fmt.Errorf("predict the apply of %s: %w", o.ref, err)
	}
	return res, reason, nil
}

// applyLocally takes over live's foreign fields and applies o over it with tc's types.
func applyLocally(tc managedfields.TypeConverter, o *object, live *unstructured.Unstructured, t takeover, now time.Time) (*unstructured.Unstructured, error) {
	gvk := o.ref.GroupVersionKind()
	fm, err := managedfields.NewDefaultCRDFieldManager(tc, sameVersionConverter{gv: gvk.GroupVersion()}, noDefaults{},
		unstructuredscheme.NewUnstructuredCreator(), gvk, gvk.GroupVersion(), "", nil)
	if err != nil {
		return nil, err
	}
	cur := live.DeepCopy()
	for range 2 {
		if cur, err = takeOverLocally(cur, t, now); err != nil {
			return nil, err
		}
		out, err := fm.Apply(cur, o.applied().DeepCopy(), FieldManager, true)
		if err != nil {
			return nil, err
		}
		u, ok := out.(*unstructured.Unstructured)
		if !ok {
			return nil, fmt.Errorf("apply returned %T", out)
		}
		cur = u
		if !t.hasForeign(cur) {
			break
		}
	}
	return cur, nil
}

// takeOverLocally returns u after the takeover patch the applier would send for it.
func takeOverLocally(u *unstructured.Unstructured, t takeover, now time.Time) (*unstructured.Unstructured, error) {
	patch, ok, err := t.patch(u, now)
	if err != nil || !ok {
		return u, err
	}
	ops, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		return nil, fmt.Errorf("take over fields: %w", err)
	}
	doc, err := json.Marshal(u.Object)
	if err != nil {
		return nil, fmt.Errorf("take over fields: %w", err)
	}
	if doc, err = ops.Apply(doc); err != nil {
		return nil, fmt.Errorf("take over fields: %w", err)
	}
	out := &unstructured.Unstructured{}
	if err := out.UnmarshalJSON(doc); err != nil {
		return nil, fmt.Errorf("take over fields: %w", err)
	}
	return out, nil
}

// sameVersionConverter converts unstructured objects within one group-version only. Field
// managers that recorded their fields at another version are left out of the prediction (the
// field manager ignores versions it cannot convert to), as the API server's conversion is
// not available to a reader.
type sameVersionConverter struct{ gv schema.GroupVersion }

var _ runtime.ObjectConvertor = sameVersionConverter{}

// Convert copies in to out.
func (c sameVersionConverter) Convert(in, out, _ any) error {
	src, ok1 := in.(*unstructured.Unstructured)
	dst, ok2 := out.(*unstructured.Unstructured)
	if !ok1 || !ok2 {
		return fmt.Errorf("convert %T to %T: only unstructured objects", in, out)
	}
	dst.Object = src.DeepCopy().Object
	return nil
}

// ConvertToVersion returns in when it is of c's group-version and the target is too.
func (c sameVersionConverter) ConvertToVersion(in runtime.Object, target runtime.GroupVersioner) (runtime.Object, error) {
	gvk := in.GetObjectKind().GroupVersionKind()
	if gvk.GroupVersion() != c.gv {
		return nil, runtime.NewNotRegisteredErrForKind("driftless-diff", gvk)
	}
	if want, ok := target.KindForGroupVersionKinds([]schema.GroupVersionKind{gvk}); !ok || want.GroupVersion() != c.gv {
		return nil, runtime.NewNotRegisteredGVKErrForTarget("driftless-diff", gvk, target)
	}
	return in, nil
}

// ConvertFieldLabel returns the label and value unchanged.
func (c sameVersionConverter) ConvertFieldLabel(_ schema.GroupVersionKind, label, value string) (string, string, error) {
	return label, value, nil
}

// noDefaults applies no defaults: the API server's defaulting is not available to a reader.
type noDefaults struct{}

// Default does nothing.
func (noDefaults) Default(runtime.Object) {}
