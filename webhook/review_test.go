package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// serveReview sends body to h as the API server would and returns the status and the
// AdmissionReview answered.
func serveReview(t *testing.T, h http.Handler, body []byte, contentType string) (int, admissionv1.AdmissionReview) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, GuardPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	h.ServeHTTP(rec, req)
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
		t.Fatalf("answered with something that is not an AdmissionReview response (%v): %s", err, rec.Body.String())
	}
	return rec.Code, out
}

// reviewBody returns the AdmissionReview the API server sends for req.
func reviewBody(t testing.TB, req admission.Request) []byte {
	t.Helper()
	body, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: reviewKind, Request: &req.AdmissionRequest})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// apiServerReview is an AdmissionReview as kube-apiserver (v1.37.2, test/harness) sent it to a
// webhook in BenchmarkAPIServerRoundTrip: alice, on call, updates a ConfigMap with 2 KiB of
// data under break-glass (valid on newTestGuard's clock) in namespace production.
func apiServerReview(t testing.TB) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", "review-apiserver-configmap.json"))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// TestReviewHandlerAnswersAsControllerRuntime: the guard's own review handler gives the
// answer controller-runtime's admission.Webhook gives, for every decision (allowed,
// denied, warned, under break-glass, malformed object) and, for reviews that cannot be
// decoded, denies with the same status.
func TestReviewHandlerAnswersAsControllerRuntime(t *testing.T) {
	bodies := map[string][]byte{}
	for name, req := range benchRequests() {
		bodies[name] = reviewBody(t, req)
	}
	broken := request{user: "bob", groups: bob, op: admissionv1.Update, ns: "production", object: owned, oldObject: owned}.build()
	broken.Object.Raw = []byte(`{"metadata":{"name":1}}`)
	bodies["object-not-decodable"] = reviewBody(t, broken)
	noUID := request{user: "bob", groups: bob, op: admissionv1.Update, ns: "production", object: owned, oldObject: owned}.build()
	noUID.UID = ""
	bodies["no-uid"] = reviewBody(t, noUID)
	// As the API server encodes a review: managedFields, userInfo.extra, options.
	bodies["apiserver-break-glass"] = apiServerReview(t)
	bodies["apiserver-break-glass-not-on-call"] = bytes.Replace(apiServerReview(t),
		[]byte(`"username":"alice","groups":["oncall",`), []byte(`"username":"bob","groups":["developers",`), 1)
	for _, mode := range []v1alpha1.Mode{v1alpha1.ModeEnforce, v1alpha1.ModeWarn} {
		g, _ := newTestGuard(t, mode)
		ours, theirs := NewReviewHandler(g), &admission.Webhook{Handler: g}
		for name, body := range bodies {
			t.Run(string(mode)+"/"+name, func(t *testing.T) {
				code, got := serveReview(t, ours, body, "application/json")
				wantCode, want := serveReview(t, theirs, body, "application/json")
				if code != wantCode || !reflect.DeepEqual(got, want) {
					t.Errorf("answered %d %+v\ncontroller-runtime %d %+v", code, *got.Response, wantCode, *want.Response)
				}
			})
		}
	}

	g, _ := newTestGuard(t, v1alpha1.ModeEnforce)
	ours := NewReviewHandler(g)

	// The API server's own encoding is read as the guard's tests build reviews: on call under
	// break-glass is allowed, someone else with the same annotations is not.
	for name, allowed := range map[string]bool{"apiserver-break-glass": true, "apiserver-break-glass-not-on-call": false} {
		if _, got := serveReview(t, ours, bodies[name], "application/json"); got.Response.Allowed != allowed || got.Response.UID == "" {
			t.Errorf("%s: answered %+v, want allowed %v and the request's uid", name, *got.Response, allowed)
		}
	}

	valid := bodies["deny-protected"]
	for _, c := range []struct {
		what        string
		body        []byte
		contentType string
		status      int32
	}{
		{"empty", nil, "application/json", http.StatusBadRequest},
		{"not JSON", []byte("not json"), "application/json", http.StatusBadRequest},
		{"another content type", valid, "application/yaml", http.StatusBadRequest},
		{"no request", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), "application/json", http.StatusBadRequest},
		{"another kind", bytes.Replace(valid, []byte(`"kind":"AdmissionReview"`), []byte(`"kind":"Review"`), 1), "application/json", http.StatusBadRequest},
		{"trailing bytes", append(bytes.Clone(valid), '}'), "application/json", http.StatusBadRequest},
		{"a key twice", bytes.Replace(valid, []byte(`"request":{`), []byte(`"request":{"uid":"forged",`), 1), "application/json", http.StatusBadRequest},
		// The guard's object scanner relies on these two: the review decoder checks the
		// objects too.
		{"a key twice in the object", bytes.Replace(valid, []byte(`"object":{`), []byte(`"object":{"metadata":{},`), 1), "application/json", http.StatusBadRequest},
		{"invalid UTF-8 in the object", bytes.Replace(valid, []byte(`"object":{`), []byte(`"object":{"x":"`+"\xff"+`",`), 1), "application/json", http.StatusBadRequest},
		{"over the size limit", append(bytes.Clone(valid[:len(valid)-1]), []byte(`,"pad":"`+strings.Repeat("x", maxReviewBytes)+`"}`)...), "application/json", http.StatusRequestEntityTooLarge},
	} {
		t.Run(c.what, func(t *testing.T) {
			_, got := serveReview(t, ours, c.body, c.contentType)
			if got.Response.Allowed || got.Response.Result == nil || got.Response.Result.Code != c.status {
				t.Errorf("answered %+v, want a denial with status %d", *got.Response, c.status)
			}
			if c.what == "a key twice" && got.Response.UID == "forged" {
				t.Error("the second uid was taken")
			}
		})
	}
}

// panicHandler is an admission.Handler that panics.
type panicHandler struct{}

func (panicHandler) Handle(context.Context, admission.Request) admission.Response { panic("boom") }

// TestReviewHandlerDeniesOnPanic: a panic while deciding is answered with a denial carrying
// the request's uid, not a dropped connection.
func TestReviewHandlerDeniesOnPanic(t *testing.T) {
	req := request{user: "bob", groups: bob, op: admissionv1.Update, ns: "production", object: owned, oldObject: owned}.build()
	_, got := serveReview(t, NewReviewHandler(panicHandler{}), reviewBody(t, req), "application/json")
	if got.Response.Allowed || got.Response.UID != req.UID || got.Response.Result == nil || got.Response.Result.Code != http.StatusInternalServerError {
		t.Errorf("answered %+v, want a denial of %s with status 500", *got.Response, req.UID)
	}
	if got.TypeMeta != (metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}) {
		t.Errorf("answered a %+v", got.TypeMeta)
	}
}

// TestReadReviewKeepsObjectsAsSent: the objects of a decoded review are the bytes the API
// server sent, wherever they are in the body and however it is spaced, and a null object is
// none.
func TestReadReviewKeepsObjectsAsSent(t *testing.T) {
	req := benchRequests()["deny-protected-deployment"]
	compact := reviewBody(t, req)
	var spaced bytes.Buffer
	if err := json.Indent(&spaced, compact, " ", "\t"); err != nil {
		t.Fatal(err)
	}
	withNull := bytes.Replace(compact, []byte(`"oldObject":`+string(req.OldObject.Raw)), []byte(`"oldObject": null`), 1)
	for name, c := range map[string]struct {
		body           []byte
		object, oldObj []byte
	}{
		"compact":     {compact, req.Object.Raw, req.OldObject.Raw},
		"spaced":      {spaced.Bytes(), nil, nil},
		"null object": {withNull, req.Object.Raw, nil},
	} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, GuardPath, bytes.NewReader(c.body))
			r.Header.Set("Content-Type", "application/json")
			got, _, err := readReview(r)
			if err != nil {
				t.Fatal(err)
			}
			if c.object == nil && name == "spaced" {
				// Indented: the objects are the indented values, which decode to the same.
				var a, b any
				if json.Unmarshal(got.Object.Raw, &a) != nil || json.Unmarshal(req.Object.Raw, &b) != nil || !reflect.DeepEqual(a, b) {
					t.Fatalf("object = %s", got.Object.Raw)
				}
				if !bytes.HasPrefix(got.Object.Raw, []byte("{")) || !bytes.HasSuffix(got.Object.Raw, []byte("}")) {
					t.Fatalf("object has more than the value: %q", got.Object.Raw)
				}
				return
			}
			if !bytes.Equal(got.Object.Raw, c.object) || !bytes.Equal(got.OldObject.Raw, c.oldObj) || (c.oldObj == nil) != (got.OldObject.Raw == nil) {
				t.Fatalf("object %q\noldObject %q", got.Object.Raw, got.OldObject.Raw)
			}
			if got.UID != req.UID || got.UserInfo.Username != req.UserInfo.Username || got.Namespace != req.Namespace {
				t.Fatalf("request read wrong: %+v", got.AdmissionRequest)
			}
		})
	}
}
