package webhook

import (
	"encoding/json"
	"errors"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// facts are what the guard knows about a request. The objects' metadata are decoded only
// when a decision needs them: most requests are decided on who and where alone.
type facts struct {
	uid         string
	user        string
	groups      []string
	operation   admissionv1.Operation
	resource    schema.GroupVersionResource
	subResource string
	kind        schema.GroupVersionKind
	namespace   string
	name        string
	dryRun      bool

	rawObject, rawOldObject []byte
	// The metadata of the new and the old object (scanNew, scanOld), decoded once each when
	// first needed; present is false when there is no such object.
	meta    [2]objectMeta
	decoded [2]bool
	present [2]bool
	// The fast path's scans of the objects (scan.go), made once each when first needed.
	scans      [2]objectScan
	scanned    [2]bool
	scanUsable [2]bool
	// err is the first decoding error. A decision taken while it is set is discarded and the
	// request is rejected as malformed.
	err error
}

// objectMeta is the part of an object the guard reads.
type objectMeta struct {
	Name         string            `json:"name"`
	GenerateName string            `json:"generateName"`
	Namespace    string            `json:"namespace"`
	UID          string            `json:"uid"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	// OwnerReferences decide the safe operations on Pods and Jobs.
	OwnerReferences []metav1.OwnerReference `json:"ownerReferences"`
}

var namespacesResource = schema.GroupResource{Resource: "namespaces"}

// read reads an admission request into f without decoding its objects. Its errors describe
// bad input and become 400s.
func (f *facts) read(req *admission.Request) error {
	if req.UID == "" {
		return errors.New("admission request has no uid")
	}
	*f = facts{
		uid:          string(req.UID),
		user:         req.UserInfo.Username,
		groups:       req.UserInfo.Groups,
		operation:    req.Operation,
		resource:     schema.GroupVersionResource(req.Resource),
		subResource:  req.SubResource,
		kind:         schema.GroupVersionKind(req.Kind),
		namespace:    req.Namespace,
		name:         req.Name,
		dryRun:       req.DryRun != nil && *req.DryRun,
		rawObject:    req.Object.Raw,
		rawOldObject: req.OldObject.Raw,
	}
	if f.resource.Resource == "" {
		return errors.New("admission request names no resource")
	}
	switch req.Operation {
	case admissionv1.Create:
		if len(f.rawObject) == 0 {
			return errors.New("admission request has no object")
		}
	case admissionv1.Update:
		if len(f.rawObject) == 0 || len(f.rawOldObject) == 0 {
			return errors.New("admission request for an update needs object and oldObject")
		}
	case admissionv1.Delete, admissionv1.Connect:
		// The API server sends the object being deleted; older servers may not.
	default:
		return fmt.Errorf("unsupported operation %q", req.Operation)
	}
	// The namespace a Namespace object stands for is its own name.
	if f.resource.GroupResource() == namespacesResource && (f.subResource == "" || f.subResource == "finalize") {
		f.namespace = f.name
	}
	return nil
}

// newObject returns the metadata of the new object, or nil when there is none.
func (f *facts) newObject() *objectMeta { return f.objectMeta(scanNew) }

// oldObjectMeta returns the metadata of the old object, or nil when there is none.
func (f *facts) oldObjectMeta() *objectMeta { return f.objectMeta(scanOld) }

// objectMeta returns the metadata of the new (scanNew) or old (scanOld) object, or nil when
// there is none.
func (f *facts) objectMeta(which int) *objectMeta {
	if !f.decoded[which] {
		f.decoded[which] = true
		f.present[which] = f.decode(which)
	}
	if !f.present[which] {
		return nil
	}
	return &f.meta[which]
}

// replaceObjects sets both objects, for a subresource request decided by its parent.
func (f *facts) replaceObjects(m *objectMeta) {
	f.meta = [2]objectMeta{*m, *m}
	f.decoded, f.present = [2]bool{true, true}, [2]bool{true, true}
}

// Which object a scan is of.
const (
	scanNew = 0
	scanOld = 1
)

// scan returns the fast path's scan of the new (scanNew) or old (scanOld) object; ok is false
// when the object must be decoded with encoding/json instead.
func (f *facts) scan(which int) (*objectScan, bool) {
	if !f.scanned[which] {
		f.scanned[which] = true
		f.scanUsable[which] = scanObject(f.raw(which), mayBeRolloutRestart(f), &f.scans[which])
	}
	return &f.scans[which], f.scanUsable[which]
}

// raw returns the JSON of the new (scanNew) or old (scanOld) object.
func (f *facts) raw(which int) []byte {
	if which == scanOld {
		return f.rawOldObject
	}
	return f.rawObject
}

// decode decodes the metadata of one object into f.meta: from the fast path's scan when it
// applies, otherwise with encoding/json. It reports whether there is such an object.
func (f *facts) decode(which int) bool {
	raw := f.raw(which)
	if len(raw) == 0 {
		return false
	}
	if s, ok := f.scan(which); ok && metaFromScan(s, &f.meta[which]) {
		return true
	}
	var obj struct {
		Metadata objectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		if f.err == nil {
			field := "object"
			if which == scanOld {
				field = "oldObject"
			}
			f.err = fmt.Errorf("decode %s: %w", field, err)
		}
		return false
	}
	f.meta[which] = obj.Metadata
	return true
}

// displayName is the object's name for messages, with generateName's prefix when the API
// server has not named it yet.
func (f *facts) displayName() string {
	if f.name != "" {
		return f.name
	}
	if o := f.newObject(); o != nil {
		if o.Name != "" {
			return o.Name
		}
		return o.GenerateName + "*"
	}
	return ""
}

// sourceName returns the source that owns the object, from the new or the old object.
func (f *facts) sourceName() string {
	if m := f.newObject(); m != nil && m.Labels[v1alpha1.LabelSource] != "" {
		return m.Labels[v1alpha1.LabelSource]
	}
	if m := f.oldObjectMeta(); m != nil {
		return m.Labels[v1alpha1.LabelSource]
	}
	return ""
}

// target is the object whose break-glass annotations decide the request: the new object, or
// the old one when there is no new one.
func (f *facts) target() *objectMeta {
	if o := f.newObject(); o != nil {
		return o
	}
	return f.oldObjectMeta()
}

// what describes the object of the request, for messages: "update configmaps/app".
func (f *facts) what() string {
	res := f.resource.Resource
	if f.resource.Group != "" {
		res += "." + f.resource.Group
	}
	if f.subResource != "" {
		return verb(f.operation) + " " + res + "/" + f.displayName() + " (subresource " + f.subResource + ")"
	}
	return verb(f.operation) + " " + res + "/" + f.displayName()
}

func verb(op admissionv1.Operation) string {
	switch op {
	case admissionv1.Create:
		return "create"
	case admissionv1.Update:
		return "update"
	case admissionv1.Delete:
		return "delete"
	case admissionv1.Connect:
		return "connect to"
	default:
		return string(op)
	}
}
