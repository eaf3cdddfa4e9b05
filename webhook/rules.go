package webhook

import (
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// Identities of Kubernetes' own components, which the guard always lets through.
const (
	kubeSystemServiceAccountPrefix = "system:serviceaccount:kube-system:"
	kubeControllerManager          = "system:kube-controller-manager"
	kubeScheduler                  = "system:kube-scheduler"
	nodesGroup                     = "system:nodes"
)

// rules is the guard's view of a configuration, derived once so that a request only does set
// look-ups.
type rules struct {
	mode             v1alpha1.Mode
	reconciler       string
	controllerUsers  sets.Set[string]
	controllerGroups sets.Set[string]
	// protected is nil when every namespace not in exempt is protected.
	protected        sets.Set[string]
	exempt           sets.Set[string]
	ignored          sets.Set[schema.GroupResource]
	breakGlassGroups []string
	maxBreakGlass    time.Duration
	messages         messageParts
	// policySet is the admission policy set's name, empty for none.
	policySet         string
	policyEnvironment string
	safeOps           v1alpha1.SafeOperations
}

func newRules(c *v1alpha1.DriftlessConfig) *rules {
	r := &rules{
		mode:             c.Guard.Mode,
		reconciler:       c.Reconciler.ServiceAccount.Username(),
		controllerUsers:  sets.New(c.Guard.ControllerIdentities.Usernames...),
		controllerGroups: sets.New(c.Guard.ControllerIdentities.Groups...),
		exempt:           sets.New(c.Guard.ExemptNamespaces...),
		ignored:          sets.New[schema.GroupResource](),
		breakGlassGroups: slices.Sorted(slices.Values(c.Guard.BreakGlass.Groups)),
		maxBreakGlass:    c.Guard.BreakGlass.MaxDuration.Duration,
		messages:         newMessageParts(c),
		policySet:        c.Guard.PolicySet,
		safeOps:          c.Guard.SafeOperations,
	}
	for _, ps := range c.PolicySets {
		if ps.Name == c.Guard.PolicySet {
			r.policyEnvironment = ps.Environment
		}
	}
	if len(c.Guard.ProtectedNamespaces) > 0 {
		r.protected = sets.New(c.Guard.ProtectedNamespaces...)
	}
	for _, gr := range c.Guard.IgnoredResources {
		r.ignored.Insert(schema.GroupResource{Group: gr.Group, Resource: gr.Resource})
	}
	return r
}

// isProtectedNamespace reports whether changes in namespace ns are guarded.
func (r *rules) isProtectedNamespace(ns string) bool {
	if r.exempt.Has(ns) {
		return false
	}
	return r.protected == nil || r.protected.Has(ns)
}

// isKubernetes reports whether the user is one of Kubernetes' own controllers or a node.
func isKubernetes(user string, groups []string) bool {
	return strings.HasPrefix(user, kubeSystemServiceAccountPrefix) ||
		user == kubeControllerManager || user == kubeScheduler ||
		slices.Contains(groups, nodesGroup)
}

func (r *rules) isController(user string, groups []string) bool {
	if r.controllerUsers.Has(user) {
		return true
	}
	for _, g := range groups {
		if r.controllerGroups.Has(g) {
			return true
		}
	}
	return false
}

// isBreakGlassGroupOf reports whether group is a break-glass group and one of groups.
func (r *rules) isBreakGlassGroupOf(group string, groups []string) bool {
	return slices.Contains(r.breakGlassGroups, group) && slices.Contains(groups, group)
}

// breakGlassGroupOf returns the first break-glass group the user belongs to, or "".
func (r *rules) breakGlassGroupOf(groups []string) string {
	for _, g := range r.breakGlassGroups {
		if slices.Contains(groups, g) {
			return g
		}
	}
	return ""
}
