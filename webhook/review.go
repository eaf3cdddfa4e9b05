package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// maxReviewBytes bounds the AdmissionReview the guard reads, as controller-runtime bounds
// its own (the API server's objects are at most about 3 MiB; a review carries two).
const maxReviewBytes = 7 << 20

// reviewKind is the only AdmissionReview the guard's webhook configuration asks for.
var reviewKind = metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"}

// ReviewHandler serves admission.k8s.io/v1 AdmissionReviews to Handler over HTTP: what
// controller-runtime's admission.Webhook does for the guard, decoding a review in one pass
// instead of two (controller-runtime reads a review once to learn its kind and again to
// decode it, which cost the guard four times its decision). Anything it cannot decode is
// answered with an errored review, which the API server treats as a denial; a panic in
// Handler too.
type ReviewHandler struct {
	// Handler decides each review.
	Handler admission.Handler
	// Log is the logger Handler finds in its context.
	Log logr.Logger
}

// NewReviewHandler returns a ReviewHandler for handler that logs to controller-runtime's
// "admission" logger.
func NewReviewHandler(handler admission.Handler) *ReviewHandler {
	return &ReviewHandler{Handler: handler, Log: logf.Log.WithName("admission")}
}

// ServeHTTP decodes one AdmissionReview, has it decided and writes the answer.
func (h *ReviewHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := h.Log
	req, status, err := readReview(r)
	if err != nil {
		log.Error(err, "bad admission review")
		writeReview(w, log, admission.Errored(status, fmt.Errorf("driftless guard: %w", err)))
		return
	}
	writeReview(w, log, h.handle(logf.IntoContext(r.Context(), log), log, req))
}

// readReview reads and decodes the AdmissionReview in r's body; on failure it returns the
// HTTP status that says why.
func readReview(r *http.Request) (admission.Request, int32, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return admission.Request{}, http.StatusBadRequest, errors.New("request body is empty")
	}
	defer r.Body.Close()
	buf := bytes.Buffer{}
	if n := r.ContentLength; n > 0 && n <= maxReviewBytes {
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(io.LimitReader(r.Body, maxReviewBytes+1))
	body := buf.Bytes()
	if err != nil {
		return admission.Request{}, http.StatusBadRequest, fmt.Errorf("read the request body: %w", err)
	}
	if len(body) > maxReviewBytes {
		return admission.Request{}, http.StatusRequestEntityTooLarge, fmt.Errorf("request body is over %d bytes", maxReviewBytes)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		return admission.Request{}, http.StatusBadRequest, fmt.Errorf("content type %q, want application/json", ct)
	}
	// One pass, case-sensitive like the API server's own decoding; duplicate keys and
	// invalid UTF-8, which the API server never sends, are refused, in the objects too (the
	// guard's object scanner relies on it).
	var review wireReview
	if err := jsonv2.Unmarshal(body, &review); err != nil {
		return admission.Request{}, http.StatusBadRequest, fmt.Errorf("decode the AdmissionReview: %w", err)
	}
	if review.TypeMeta != reviewKind {
		return admission.Request{}, http.StatusBadRequest, fmt.Errorf("got apiVersion %q kind %q, want an %s AdmissionReview", review.APIVersion, review.Kind, reviewKind.APIVersion)
	}
	if review.Request == nil {
		return admission.Request{}, http.StatusBadRequest, errors.New("the AdmissionReview has no request")
	}
	req := review.Request.AdmissionRequest
	req.Object.Raw, req.OldObject.Raw = review.Request.Object.in(body), review.Request.OldObject.in(body)
	return admission.Request{AdmissionRequest: req}, 0, nil
}

// wireReview is an AdmissionReview as the guard decodes it: the objects of its request are
// left where they are in the body, not copied out as runtime.RawExtension copies them.
type wireReview struct {
	metav1.TypeMeta `json:",inline"`
	Request         *wireRequest `json:"request"`
}

// wireRequest is an AdmissionRequest whose object and oldObject (which take precedence over
// the embedded request's) are positions in the review's body.
type wireRequest struct {
	admissionv1.AdmissionRequest
	Object    rawSpan `json:"object"`
	OldObject rawSpan `json:"oldObject"`
}

// rawSpan is where a JSON value is in the input it was decoded from.
type rawSpan struct {
	start, end int64
}

// UnmarshalJSONFrom records where the next value is. The value has been checked as JSON by
// the decoder.
func (s *rawSpan) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	s.end = dec.InputOffset()
	s.start = s.end - int64(len(v))
	if v.Kind() == 'n' {
		// null is no object, as runtime.RawExtension reads it.
		*s = rawSpan{}
	}
	return nil
}

// in returns the value in body, the input it was decoded from; nil for none.
func (s rawSpan) in(body []byte) []byte {
	if s.end == 0 {
		return nil
	}
	return body[s.start:s.end:s.end]
}

// handle has req decided; a panic is answered as an internal error.
func (h *ReviewHandler) handle(ctx context.Context, log logr.Logger, req admission.Request) (resp admission.Response) {
	defer func() {
		if p := recover(); p != nil {
			log.Error(fmt.Errorf("panic: %v", p), "admission handler panicked, denying", "uid", req.UID, "stack", string(debug.Stack()))
			resp = admission.Errored(http.StatusInternalServerError, fmt.Errorf("driftless guard: panic: %v [recovered]", p))
			resp.UID = req.UID
		}
	}()
	resp = h.Handler.Handle(ctx, req)
	if err := resp.Complete(req); err != nil {
		log.Error(err, "unable to complete the admission response", "uid", req.UID)
		resp = admission.Errored(http.StatusInternalServerError, errors.New("driftless guard: unable to encode the response"))
		resp.UID = req.UID
	}
	return resp
}

// writeReview writes resp as an admission.k8s.io/v1 AdmissionReview.
func writeReview(w http.ResponseWriter, log logr.Logger, resp admission.Response) {
	body, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: reviewKind, Response: &resp.AdmissionResponse})
	if err != nil {
		// An AdmissionResponse always encodes; answer without it all the same.
		log.Error(err, "unable to encode the admission response")
		http.Error(w, "driftless guard: unable to encode the response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if _, err := w.Write(body); err != nil {
		log.Error(err, "unable to write the admission response")
	}
}
