package webhook

import (
	"fmt"
	"slices"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ServiceDNSNames returns the DNS names a serving certificate must cover for a webhook behind
// the Service svc: <name>.<namespace>.svc, the host the API server connects to and verifies.
func ServiceDNSNames(svc types.NamespacedName) []string {
	return []string{svc.Name + "." + svc.Namespace + ".svc"}
}

// extendedKeyUsages are the cert-manager key usages that become extended key usages. A
// certificate that lists any of them must list server auth (or any) for a TLS client to
// accept it as a serving certificate.
var extendedKeyUsages = []cmapi.KeyUsage{
	cmapi.UsageAny, cmapi.UsageServerAuth, cmapi.UsageClientAuth, cmapi.UsageCodeSigning,
	cmapi.UsageEmailProtection, cmapi.UsageSMIME, cmapi.UsageIPsecEndSystem, cmapi.UsageIPsecTunnel,
	cmapi.UsageIPsecUser, cmapi.UsageTimestamping, cmapi.UsageOCSPSigning, cmapi.UsageMicrosoftSGC,
	cmapi.UsageNetscapeSGC,
}

// ValidateServingCertificate checks that the cert-manager Certificate crt issues a certificate
// the API server accepts when it calls the webhook Service svc: spec.dnsNames cover every name
// of ServiceDNSNames (a wildcard covers one leftmost label, as in TLS), and spec.usages, when
// they name extended key usages, include server auth. The common name does not count: Go's TLS
// client, and so the API server, checks DNS names only. Each error names what is missing.
func ValidateServingCertificate(crt *cmapi.Certificate, svc types.NamespacedName) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	for _, want := range ServiceDNSNames(svc) {
		if !slices.ContainsFunc(crt.Spec.DNSNames, func(pattern string) bool { return hostnameMatches(pattern, want) }) {
			errs = append(errs, field.Required(spec.Child("dnsNames"),
				fmt.Sprintf("must include %q, the name the API server uses to reach Service %s", want, svc)))
		}
	}
	hasExtended := slices.ContainsFunc(crt.Spec.Usages, func(u cmapi.KeyUsage) bool { return slices.Contains(extendedKeyUsages, u) })
	if hasExtended && !slices.Contains(crt.Spec.Usages, cmapi.UsageServerAuth) && !slices.Contains(crt.Spec.Usages, cmapi.UsageAny) {
		errs = append(errs, field.Required(spec.Child("usages"),
			fmt.Sprintf("must include %q when other extended key usages are listed, or TLS clients reject the certificate", cmapi.UsageServerAuth)))
	}
	return errs
}

// hostnameMatches reports whether a certificate DNS name (possibly a wildcard such as
// *.driftless-system.svc) covers host, with the rules of TLS clients: case-insensitive, a
// wildcard only as the whole leftmost label, covering exactly one label.
func hostnameMatches(pattern, host string) bool {
	pattern = strings.ToLower(strings.TrimSuffix(pattern, "."))
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if pattern == host {
		return true
	}
	rest, ok := strings.CutPrefix(pattern, "*.")
	if !ok || rest == "" {
		return false
	}
	_, hostRest, ok := strings.Cut(host, ".")
	return ok && hostRest == rest
}

// CertificateHealth is what a health view shows about a cert-manager Certificate.
type CertificateHealth struct {
	// Certificate is the namespace and name of the Certificate.
	Certificate types.NamespacedName
	// Ready is true when cert-manager reports the certificate ready for the Certificate's
	// current generation and it has not expired.
	Ready bool
	// Reason is a CamelCase reason for Ready: Expired, NoReadyCondition, StaleCondition, or
	// else the Ready condition's reason.
	Reason string
	// Message explains Reason.
	Message string
	// Issuing is true while cert-manager issues or renews the certificate.
	Issuing bool
	// NotAfter is when the current certificate expires; nil before the first issuance.
	NotAfter *time.Time
	// RenewalTime is when cert-manager plans to renew it; nil when unknown.
	RenewalTime *time.Time
}

// String formats the health on one line, for logs and status output.
func (h CertificateHealth) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "certificate %s: ", h.Certificate)
	if h.Ready {
		b.WriteString("ready")
	} else {
		b.WriteString("not ready")
	}
	if h.Reason != "" {
		fmt.Fprintf(&b, " (%s", h.Reason)
		if h.Message != "" {
			fmt.Fprintf(&b, ": %s", h.Message)
		}
		b.WriteString(")")
	}
	if h.Issuing {
		b.WriteString(", issuing")
	}
	if h.NotAfter != nil {
		fmt.Fprintf(&b, ", expires %s", h.NotAfter.UTC().Format(time.RFC3339))
	}
	if h.RenewalTime != nil {
		fmt.Fprintf(&b, ", renews %s", h.RenewalTime.UTC().Format(time.RFC3339))
	}
	return b.String()
}

// CertificateReadiness reports the health of the cert-manager Certificate crt at time now
// from its status: the Ready condition (which counts only when it was observed for the
// Certificate's current generation), the Issuing condition, and the expiry and renewal times.
// A certificate past its NotAfter is not ready, whatever the condition says.
func CertificateReadiness(crt *cmapi.Certificate, now time.Time) CertificateHealth {
	h := CertificateHealth{
		Certificate: types.NamespacedName{Namespace: crt.Namespace, Name: crt.Name},
		NotAfter:    timePtr(crt.Status.NotAfter),
		RenewalTime: timePtr(crt.Status.RenewalTime),
	}
	if c := certificateCondition(crt, cmapi.CertificateConditionIssuing); c != nil && c.Status == cmmeta.ConditionTrue {
		h.Issuing = true
	}
	ready := certificateCondition(crt, cmapi.CertificateConditionReady)
	switch {
	case h.NotAfter != nil && !now.Before(*h.NotAfter):
		h.Reason = "Expired"
		h.Message = fmt.Sprintf("the certificate expired at %s", h.NotAfter.UTC().Format(time.RFC3339))
	case ready == nil:
		h.Reason, h.Message = "NoReadyCondition", "cert-manager has not reported on the certificate yet"
	case ready.ObservedGeneration != 0 && ready.ObservedGeneration < crt.Generation:
		h.Reason = "StaleCondition"
		h.Message = fmt.Sprintf("the Ready condition is for generation %d, the Certificate is at generation %d", ready.ObservedGeneration, crt.Generation)
	default:
		h.Ready = ready.Status == cmmeta.ConditionTrue
		h.Reason, h.Message = ready.Reason, ready.Message
	}
	return h
}

func certificateCondition(crt *cmapi.Certificate, t cmapi.CertificateConditionType) *cmapi.CertificateCondition {
	for i := range crt.Status.Conditions {
		if crt.Status.Conditions[i].Type == t {
			return &crt.Status.Conditions[i]
		}
	}
	return nil
}

func timePtr(t *metav1.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	return &t.Time
}
