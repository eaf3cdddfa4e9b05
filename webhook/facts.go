package webhook

import (
	"encoding/json"
	"errors"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// facts are what the guard knows about a request once it is decoded.
type facts struct {
	user        string
	groups      []string
	operation   admissionv1.Operation
	resource    schema.GroupVersionResource
	subResource string
	kind        schema.GroupVersionKind
	namespace   string
	name        string
	dryRun      bool
	// object and oldObject are the metadata of the new and old object; nil when the operation
	// has none (no new object on DELETE, no old one on CREATE).
	object    *objectMeta
	oldObject *objectMeta
}

// objectMeta is the part of an object the guard reads.
type objectMeta struct {
	Name         string            `json:"name"`
	GenerateName string            `json:"generateName"`
	Namespace    string            `json:"namespace"`
	UID          string            `json:"uid"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
}

var namespacesResource = schema.GroupResource{Resource: "namespaces"}

// newFacts decodes an admission request. Its errors describe bad input and become 400s.
func newFacts(req *admission.Request) (*facts, error) {
	if req.UID == "" {
		return nil, errors.New("admission request has no uid")
	}
	f := &facts{
		user:        req.UserInfo.Username,
		groups:      req.UserInfo.Groups,
		operation:   req.Operation,
		resource:    schema.GroupVersionResource(req.Resource),
		subResource: req.SubResource,
		kind:        schema.GroupVersionKind(req.Kind),
		namespace:   req.Namespace,
		name:        req.Name,
		dryRun:      req.DryRun != nil && *req.DryRun,
	}
	if f.resource.Resource == "" {
		return nil, errors.New("admission request names no resource")
	}
	var err error
	switch req.Operation {
	case admissionv1.Create:
		f.object, err = decodeMeta("object", req.Object.Raw, true)
	case admissionv1.Update:
		if f.object, err = decodeMeta("object", req.Object.Raw, true); err == nil {
			f.oldObject, err = decodeMeta("oldObject", req.OldObject.Raw, true)
		}
	case admissionv1.Delete:
		// The API server sends the object being deleted; older servers may not.
		f.oldObject, err = decodeMeta("oldObject", req.OldObject.Raw, false)
	case admissionv1.Connect:
	default:
		return nil, fmt.Errorf("unsupported operation %q", req.Operation)
	}
	if err != nil {
		return nil, err
	}
	if f.name == "" && f.object != nil {
		f.name = f.object.Name
		if f.name == "" {
			f.name = f.object.GenerateName + "*"
		}
	}
	// The namespace a Namespace object stands for is its own name.
	if f.resource.GroupResource() == namespacesResource && f.subResource == "" {
		f.namespace = f.name
	}
	return f, nil
}

func decodeMeta(field string, raw []byte, required bool) (*objectMeta, error) {
	if len(raw) == 0 {
		if required {
			return nil, fmt.Errorf("admission request has no %s", field)
		}
		return nil, nil
	}
	var obj struct {
		Metadata objectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("decode %s: %w", field, err)
	}
	return &obj.Metadata, nil
}

// sourceName returns the source that owns the object, from the new or the old object.
func (f *facts) sourceName() string {
	for _, m := range []*objectMeta{f.object, f.oldObject} {
		if m != nil && m.Labels[v1alpha1.LabelSource] != "" {
			return m.Labels[v1alpha1.LabelSource]
		}
	}
	return ""
}

// target is the object whose break-glass annotations decide the request: the new object, or
// the old one when there is no new one.
func (f *facts) target() *objectMeta {
	if f.object != nil {
		return f.object
	}
	return f.oldObject
}

// what describes the object of the request, for messages: "update configmaps/app".
func (f *facts) what() string {
	res := f.resource.Resource
	if f.resource.Group != "" {
		res += "." + f.resource.Group
	}
	if f.subResource != "" {
		return fmt.Sprintf("%s %s/%s (subresource %s)", verb(f.operation), res, f.name, f.subResource)
	}
	return fmt.Sprintf("%s %s/%s", verb(f.operation), res, f.name)
}

func verb(op admissionv1.Operation) string {
	switch op {
	case admissionv1.Create:
		return "create"
	case admissionv1.Update:
		return "update"
	case admissionv1.Delete:
		return "delete"
	default:
		return string(op)
	}
}
