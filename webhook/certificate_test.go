package webhook

import (
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

var webhookService = types.NamespacedName{Namespace: "driftless-system", Name: "driftless-webhook"}

func TestServiceDNSNames(t *testing.T) {
	got := ServiceDNSNames(webhookService)
	want := []string{"driftless-webhook.driftless-system.svc"}
	if !slices.Equal(got, want) {
		t.Errorf("ServiceDNSNames = %q, want %q", got, want)
	}
}

func TestValidateServingCertificate(t *testing.T) {
	tests := []struct {
		name     string
		dnsNames []string
		usages   []cmapi.KeyUsage
		// wantErrs are substrings of each expected error, in order; none means valid.
		wantErrs []string
	}{
		{name: "service names", dnsNames: []string{"driftless-webhook.driftless-system.svc", "driftless-webhook.driftless-system.svc.cluster.local"}},
		{name: "svc name only", dnsNames: []string{"driftless-webhook.driftless-system.svc"}},
		{name: "case and trailing dot", dnsNames: []string{"Driftless-Webhook.driftless-system.SVC."}},
		{name: "wildcard", dnsNames: []string{"*.driftless-system.svc"}},
		{name: "with server auth", dnsNames: []string{"driftless-webhook.driftless-system.svc"}, usages: []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageServerAuth, cmapi.UsageClientAuth}},
		{name: "with any usage", dnsNames: []string{"driftless-webhook.driftless-system.svc"}, usages: []cmapi.KeyUsage{cmapi.UsageAny}},
		{name: "key usages only", dnsNames: []string{"driftless-webhook.driftless-system.svc"}, usages: []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageKeyEncipherment}},
		{
			name:     "cluster.local only",
			dnsNames: []string{"driftless-webhook.driftless-system.svc.cluster.local"},
			wantErrs: []string{`spec.dnsNames: Required value: must include "driftless-webhook.driftless-system.svc", the name the API server uses to reach Service driftless-system/driftless-webhook`},
		},
		{
			name:     "no names",
			wantErrs: []string{`must include "driftless-webhook.driftless-system.svc"`},
		},
		{
			name:     "other namespace",
			dnsNames: []string{"driftless-webhook.default.svc"},
			wantErrs: []string{`must include "driftless-webhook.driftless-system.svc"`},
		},
		{
			name:     "wildcard covers one label only",
			dnsNames: []string{"*.svc"},
			wantErrs: []string{`must include "driftless-webhook.driftless-system.svc"`},
		},
		{
			name:     "wildcard inside a label",
			dnsNames: []string{"driftless-*.driftless-system.svc"},
			wantErrs: []string{`must include "driftless-webhook.driftless-system.svc"`},
		},
		{
			name:     "client auth without server auth",
			dnsNames: []string{"driftless-webhook.driftless-system.svc"},
			usages:   []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageClientAuth},
			wantErrs: []string{`spec.usages: Required value: must include "server auth"`},
		},
		{
			name:     "both wrong",
			dnsNames: []string{"driftless-webhook"},
			usages:   []cmapi.KeyUsage{cmapi.UsageClientAuth},
			wantErrs: []string{`spec.dnsNames`, `spec.usages`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crt := &cmapi.Certificate{Spec: cmapi.CertificateSpec{
				CommonName: "driftless-webhook.driftless-system.svc",
				DNSNames:   tt.dnsNames,
				Usages:     tt.usages,
				SecretName: "driftless-webhook-tls",
			}}
			errs := ValidateServingCertificate(crt, webhookService)
			if len(errs) != len(tt.wantErrs) {
				t.Fatalf("got %d errors, want %d: %v", len(errs), len(tt.wantErrs), errs)
			}
			for i, want := range tt.wantErrs {
				if !strings.Contains(errs[i].Error(), want) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i].Error(), want)
				}
			}
		})
	}
}

func TestCertificateReadiness(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	notAfter := now.Add(60 * 24 * time.Hour)
	renewal := now.Add(30 * 24 * time.Hour)
	cond := func(typ cmapi.CertificateConditionType, status cmmeta.ConditionStatus, reason, msg string, gen int64) cmapi.CertificateCondition {
		return cmapi.CertificateCondition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: gen}
	}
	tests := []struct {
		name       string
		generation int64
		status     cmapi.CertificateStatus
		want       CertificateHealth
		wantString string
	}{
		{
			name:       "ready",
			generation: 2,
			status: cmapi.CertificateStatus{
				Conditions:  []cmapi.CertificateCondition{cond(cmapi.CertificateConditionReady, cmmeta.ConditionTrue, "Ready", "Certificate is up to date and has not expired", 2)},
				NotAfter:    &metav1.Time{Time: notAfter},
				RenewalTime: &metav1.Time{Time: renewal},
			},
			want:       CertificateHealth{Ready: true, Reason: "Ready", Message: "Certificate is up to date and has not expired", NotAfter: &notAfter, RenewalTime: &renewal},
			wantString: "certificate driftless-system/driftless-webhook: ready (Ready: Certificate is up to date and has not expired), expires 2027-01-25T10:00:00Z, renews 2026-12-26T10:00:00Z",
		},
		{
			name:       "renewing while ready",
			generation: 1,
			status: cmapi.CertificateStatus{
				Conditions: []cmapi.CertificateCondition{
					cond(cmapi.CertificateConditionReady, cmmeta.ConditionTrue, "Ready", "", 1),
					cond(cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, "Renewing", "Renewing certificate as renewal was scheduled", 1),
				},
				NotAfter:    &metav1.Time{Time: notAfter},
				RenewalTime: &metav1.Time{Time: now.Add(-time.Minute)},
			},
			want: CertificateHealth{Ready: true, Reason: "Ready", Issuing: true, NotAfter: &notAfter, RenewalTime: ptrTime(now.Add(-time.Minute))},
		},
		{
			name:       "not issued yet",
			generation: 1,
			status: cmapi.CertificateStatus{Conditions: []cmapi.CertificateCondition{
				cond(cmapi.CertificateConditionReady, cmmeta.ConditionFalse, "DoesNotExist", "Issuing certificate as Secret does not exist", 1),
				cond(cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, "DoesNotExist", "", 1),
			}},
			want:       CertificateHealth{Reason: "DoesNotExist", Message: "Issuing certificate as Secret does not exist", Issuing: true},
			wantString: "certificate driftless-system/driftless-webhook: not ready (DoesNotExist: Issuing certificate as Secret does not exist), issuing",
		},
		{
			name:       "no status",
			generation: 1,
			want:       CertificateHealth{Reason: "NoReadyCondition", Message: "cert-manager has not reported on the certificate yet"},
		},
		{
			name:       "stale condition",
			generation: 3,
			status: cmapi.CertificateStatus{
				Conditions: []cmapi.CertificateCondition{cond(cmapi.CertificateConditionReady, cmmeta.ConditionTrue, "Ready", "", 2)},
				NotAfter:   &metav1.Time{Time: notAfter},
			},
			want: CertificateHealth{Reason: "StaleCondition", Message: "the Ready condition is for generation 2, the Certificate is at generation 3", NotAfter: &notAfter},
		},
		{
			name:       "condition without observed generation",
			generation: 3,
			status:     cmapi.CertificateStatus{Conditions: []cmapi.CertificateCondition{cond(cmapi.CertificateConditionReady, cmmeta.ConditionTrue, "Ready", "", 0)}},
			want:       CertificateHealth{Ready: true, Reason: "Ready"},
		},
		{
			name:       "expired although ready",
			generation: 1,
			status: cmapi.CertificateStatus{
				Conditions: []cmapi.CertificateCondition{cond(cmapi.CertificateConditionReady, cmmeta.ConditionTrue, "Ready", "", 1)},
				NotAfter:   &metav1.Time{Time: now},
			},
			want:       CertificateHealth{Reason: "Expired", Message: "the certificate expired at 2026-11-26T10:00:00Z", NotAfter: &now},
			wantString: "certificate driftless-system/driftless-webhook: not ready (Expired: the certificate expired at 2026-11-26T10:00:00Z), expires 2026-11-26T10:00:00Z",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crt := &cmapi.Certificate{
				ObjectMeta: metav1.ObjectMeta{Namespace: "driftless-system", Name: "driftless-webhook", Generation: tt.generation},
				Status:     tt.status,
			}
			got := CertificateReadiness(crt, now)
			tt.want.Certificate = types.NamespacedName{Namespace: "driftless-system", Name: "driftless-webhook"}
			if !equalHealth(got, tt.want) {
				t.Errorf("CertificateReadiness =\n  %+v\nwant\n  %+v", got, tt.want)
			}
			if tt.wantString != "" && got.String() != tt.wantString {
				t.Errorf("String() =\n  %s\nwant\n  %s", got.String(), tt.wantString)
			}
		})
	}
}

func equalHealth(a, b CertificateHealth) bool {
	eqTime := func(x, y *time.Time) bool { return (x == nil) == (y == nil) && (x == nil || x.Equal(*y)) }
	return a.Certificate == b.Certificate && a.Ready == b.Ready && a.Reason == b.Reason && a.Message == b.Message &&
		a.Issuing == b.Issuing && eqTime(a.NotAfter, b.NotAfter) && eqTime(a.RenewalTime, b.RenewalTime)
}

func ptrTime(t time.Time) *time.Time { return &t }
