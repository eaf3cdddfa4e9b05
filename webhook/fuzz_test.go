package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

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
	handler := &admission.Webhook{Handler: g}
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
