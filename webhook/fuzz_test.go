package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// FuzzAdmissionReview sends arbitrary bytes to the guard's HTTP endpoint, as the API server
// would. The guard must never panic and never allow a review it cannot decode.
func FuzzAdmissionReview(f *testing.F) {
	for _, r := range []request{
		{user: "bob", groups: bob, op: admissionv1.Update, ns: "production", object: owned, oldObject: owned},
		{user: "bob", groups: bob, op: admissionv1.Update, ns: "sandbox", object: owned, oldObject: owned},
		{user: "alice", groups: alice, op: admissionv1.Delete, ns: "production", oldObject: breakGlassObj("INC-1", now.Add(1e12))},
	} {
		req := r.build()
		body, err := json.Marshal(admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Request:  &req.AdmissionRequest,
		})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`))
	f.Add([]byte(`not json`))

	g, _ := newTestGuard(f, v1alpha1.ModeEnforce)
	handler := NewReviewHandler(g)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, GuardPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		handler.ServeHTTP(rec, req)

		var out admissionv1.AdmissionReview
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
			t.Fatalf("guard answered with something that is not an AdmissionReview response (%v): %s", err, rec.Body.String())
		}
		if !out.Response.Allowed {
			return
		}
		var in admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &in); err != nil || in.Request == nil || in.Request.UID == "" {
			t.Fatalf("guard allowed a review it cannot decode (%v): %q", err, body)
		}
	})
}

// FuzzScanAgreesWithDecode checks the guard's fast path through an object's JSON (scan.go)
// against encoding/json: on every document the review decoder accepts (jsontext's checks:
// well formed, valid UTF-8, no name twice), whenever the fast path applies, the metadata and
// the pod template's restartedAt annotation it reads are what decoding the whole object gives.
// On any other bytes the scanner must only end without a panic.
func FuzzScanAgreesWithDecode(f *testing.F) {
	for _, seed := range []string{
		string(deploymentJSON),
		string(owned.raw("app", "production").Raw),
		string(breakGlassObj("INC-1", now).raw("app", "production").Raw),
		`{"metadata":null}`,
		`{"metadata":"x"}`,
		`{"Metadata":{"name":"a"}}`,
		`{"metadata":{"Labels":{"a":"b"}}}`,
		`{"metadata":{"name":"a"},"metadata":{"uid":"b"}}`,
		`{"metadata":{"labels":{"a":"b","a":"c"},"annotations":{}}}`,
		`{"metadata":{"labels":{"a":null,"b":"\u00e9"},"name":"x\"y","namespace":null}}`,
		`{"metadata":{"labels":{"a":1}}}`,
		`{"metadata":{"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"u","controller":true}]}}`,
		`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-01-01T00:00:00Z"}}}}}`,
		`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io\/restartedAt":1}}}}}`,
		`{"spec":{"template":{"metadata":{"annotations":"x"}}},"spec":{}}`,
		` {"a":[1,-0.5E+3,true,false,null,{"b":[]}],"c":"\ud800"} `,
		`{"a":01}`,
		`{"a":1}x`,
		`{"a":"` + "\x01" + `"}`,
		`{"m\u0065tadata":{"name":"a"}}`,
		"{\"metadata\":{\"name\":\"\xff\"}}",
		`{"metadata":{"managedFields":[{"f:a":{"k:{\"name\":\"x\"}":{},"b":"]}\\"}}],"name":"n"},"spec":{"a":"}\"]","template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"t"}}}}}`,
		`{"kind":"X","metadata":{"name":"a","labels":{"a":"b"}},"spec":[1,{"template":2}],"metadata":{}}`,
		`{"spec":{"template":{"metadata":{}}},"metadata":{"uid":"u"},"status":{"a":[[[]]]}}`,
		`[]`,
		`null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var withTemplate, without objectScan
		okWith := scanObject(raw, true, &withTemplate)
		okWithout := scanObject(raw, false, &without)
		if !jsontext.Value(raw).IsValid() {
			return
		}
		var full struct {
			Metadata objectMeta `json:"metadata"`
		}
		fullErr := json.Unmarshal(raw, &full)
		for _, c := range []struct {
			ok bool
			s  objectScan
		}{{okWith, withTemplate}, {okWithout, without}} {
			if !c.ok {
				continue
			}
			m := &objectMeta{}
			if !metaFromScan(&c.s, m) {
				continue
			}
			if fullErr != nil {
				t.Fatalf("the fast path read the metadata of %q, which encoding/json cannot decode: %v", raw, fullErr)
			}
			if !reflect.DeepEqual(*m, full.Metadata) {
				t.Fatalf("metadata of %q:\nfast path     %#v\nencoding/json %#v", raw, *m, full.Metadata)
			}
		}
		// isRolloutRestart compares the annotation whole objects decode to; an object that does
		// not decode is no restart, whatever the fast path read.
		var whole map[string]any
		if okWith && json.Unmarshal(raw, &whole) == nil {
			want, _, _ := unstructured.NestedString(whole, "spec", "template", "metadata", "annotations", AnnotationRestartedAt)
			if got := restartedAt(&withTemplate); got != want {
				t.Fatalf("restartedAt of %q: fast path %q, encoding/json %q", raw, got, want)
			}
		}
	})
}
