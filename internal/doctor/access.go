package doctor

import (
	"context"
	"fmt"
	"slices"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// permission is one right that amounts to acting as the reconciler, or to reading what lets
// someone impersonate the guard.
type permission struct {
	what  string
	attrs authorizationv1.ResourceAttributes
}

func (c *checker) permissions() []permission {
	sa := c.cfg.Reconciler.ServiceAccount
	return []permission{
		{"impersonate the reconciler's service account", authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "serviceaccounts", Namespace: sa.Namespace, Name: sa.Name}},
		{"impersonate the reconciler's user name", authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "users", Name: saUser(sa.Namespace, sa.Name)}},
		{"create tokens for the reconciler's service account", authorizationv1.ResourceAttributes{Verb: "create", Resource: "serviceaccounts", Subresource: "token", Namespace: sa.Namespace, Name: sa.Name}},
		{"create pods in " + c.Namespace, authorizationv1.ResourceAttributes{Verb: "create", Resource: "pods", Namespace: c.Namespace}},
		{"read Secrets in " + c.Namespace, authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: c.Namespace}},
	}
}

// grant is a binding that names a subject, with the rules of the role it binds.
type grant struct {
	binding   string // "ClusterRoleBinding x" or "RoleBinding ns/x"
	namespace string // "" for a ClusterRoleBinding
	roleRef   rbacv1.RoleRef
	rules     []rbacv1.PolicyRule
}

// access asks the API server, with a SubjectAccessReview per subject and permission, who may
// act as the reconciler or read Driftless's secrets. The subjects are those named in
// ClusterRoleBindings and in RoleBindings of the Driftless namespace. Kubernetes' own
// components, the reconciler itself and the configured controller identities are expected to;
// so are system:masters and subjects whose only grant is cluster-admin (reported as warn).
// Anyone else FAILs, by name, with the bindings that grant it.
func (c *checker) access(ctx context.Context) {
	const check = "access"
	if c.cfg == nil {
		return
	}
	rbac := c.Kube.RbacV1()
	crbs, err := rbac.ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		c.add(Fail, check, fmt.Sprintf("list ClusterRoleBindings: %v", err), "run doctor as someone who may read RBAC")
		return
	}
	rbs, err := rbac.RoleBindings(c.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		c.add(Fail, check, fmt.Sprintf("list RoleBindings in %s: %v", c.Namespace, err), "run doctor as someone who may read RBAC")
		return
	}
	rulesOf := func(ref rbacv1.RoleRef, ns string) []rbacv1.PolicyRule {
		if ref.Kind == "ClusterRole" {
			if r, err := rbac.ClusterRoles().Get(ctx, ref.Name, metav1.GetOptions{}); err == nil {
				return r.Rules
			}
			return nil
		}
		if r, err := rbac.Roles(ns).Get(ctx, ref.Name, metav1.GetOptions{}); err == nil {
			return r.Rules
		}
		return nil
	}
	grants := map[rbacv1.Subject][]grant{}
	var subjects []rbacv1.Subject
	addSubjects := func(ss []rbacv1.Subject, g grant) {
		for _, s := range ss {
			s.APIGroup = ""
			if s.Kind != rbacv1.ServiceAccountKind {
				s.Namespace = ""
			}
			if _, seen := grants[s]; !seen {
				subjects = append(subjects, s)
			}
			grants[s] = append(grants[s], g)
		}
	}
	for _, b := range crbs.Items {
		addSubjects(b.Subjects, grant{binding: "ClusterRoleBinding " + b.Name, roleRef: b.RoleRef, rules: rulesOf(b.RoleRef, "")})
	}
	for _, b := range rbs.Items {
		addSubjects(b.Subjects, grant{binding: "RoleBinding " + b.Namespace + "/" + b.Name, namespace: b.Namespace, roleRef: b.RoleRef, rules: rulesOf(b.RoleRef, b.Namespace)})
	}

	c.add(Warn, check, "group system:masters may do everything (Kubernetes' superuser group, expected)", "keep its client certificates to as few people as possible")
	perms := c.permissions()
	failed := false
	for _, s := range subjects {
		if c.expectedSubject(s) {
			continue
		}
		var can []string
		var via []string
		onlyClusterAdmin := true
		for _, p := range perms {
			allowed, err := c.subjectCan(ctx, s, p.attrs)
			if err != nil {
				c.add(Fail, check, fmt.Sprintf("SubjectAccessReview for %s: %v", subjectName(s), err), "run doctor as someone who may create SubjectAccessReviews")
				return
			}
			if !allowed {
				continue
			}
			can = append(can, p.what)
			for _, g := range grants[s] {
				if !g.allows(p.attrs) {
					continue
				}
				if !slices.Contains(via, g.binding) {
					via = append(via, g.binding)
				}
				if g.roleRef.Kind != "ClusterRole" || g.roleRef.Name != "cluster-admin" {
					onlyClusterAdmin = false
				}
			}
		}
		if len(can) == 0 {
			continue
		}
		if len(via) == 0 {
			onlyClusterAdmin = false
			via = []string{"a grant doctor cannot attribute"}
		}
		msg := fmt.Sprintf("%s may %s (through %s)", subjectName(s), strings.Join(can, ", "), strings.Join(via, ", "))
		if onlyClusterAdmin {
			c.add(Warn, check, msg+": cluster-admin, expected", "bind cluster-admin to as few people as possible")
			continue
		}
		failed = true
		c.add(Fail, check, msg+": whoever can act as the reconciler passes the guard and self-protection unchecked",
			"remove the grant (see docs/install.md#what-you-must-still-lock-down-with-rbac)")
	}
	if !failed {
		c.add(OK, check, "nobody but Kubernetes, Driftless, its controller identities and cluster-admin may act as the reconciler or read its Secrets", "")
	}
}

// expectedSubject reports whether s is trusted by design: Kubernetes' own components, the
// reconciler, and the configured controller identities.
func (c *checker) expectedSubject(s rbacv1.Subject) bool {
	sa := c.cfg.Reconciler.ServiceAccount
	switch s.Kind {
	case rbacv1.ServiceAccountKind:
		if s.Namespace == "kube-system" || s.Namespace == sa.Namespace && s.Name == sa.Name {
			return true
		}
		return slices.Contains(c.cfg.Guard.ControllerIdentities.Usernames, saUser(s.Namespace, s.Name))
	case rbacv1.UserKind:
		if s.Name == "system:kube-controller-manager" || s.Name == "system:kube-scheduler" || strings.HasPrefix(s.Name, "system:node:") ||
			s.Name == saUser(sa.Namespace, sa.Name) || strings.HasPrefix(s.Name, "system:serviceaccount:kube-system:") {
			return true
		}
		return slices.Contains(c.cfg.Guard.ControllerIdentities.Usernames, s.Name)
	case rbacv1.GroupKind:
		return s.Name == "system:nodes" || s.Name == "system:masters" || slices.Contains(c.cfg.Guard.ControllerIdentities.Groups, s.Name)
	}
	return false
}

// subjectCan asks the API server whether s may do attrs.
func (c *checker) subjectCan(ctx context.Context, s rbacv1.Subject, attrs authorizationv1.ResourceAttributes) (bool, error) {
	spec := authorizationv1.SubjectAccessReviewSpec{ResourceAttributes: &attrs}
	switch s.Kind {
	case rbacv1.UserKind:
		spec.User = s.Name
	case rbacv1.GroupKind:
		spec.Groups = []string{s.Name}
	case rbacv1.ServiceAccountKind:
		spec.User = saUser(s.Namespace, s.Name)
		spec.Groups = []string{"system:serviceaccounts", "system:serviceaccounts:" + s.Namespace}
	default:
		return false, nil
	}
	sar, err := c.Kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return sar.Status.Allowed, nil
}

func subjectName(s rbacv1.Subject) string {
	switch s.Kind {
	case rbacv1.ServiceAccountKind:
		return "service account " + s.Namespace + "/" + s.Name
	case rbacv1.GroupKind:
		return "group " + s.Name
	}
	return "user " + s.Name
}

// allows reports whether the grant's rules allow attrs, as RBAC evaluates them: a RoleBinding
// grants only in its namespace.
func (g grant) allows(a authorizationv1.ResourceAttributes) bool {
	if g.namespace != "" && a.Namespace != g.namespace {
		return false
	}
	resource := a.Resource
	if a.Subresource != "" {
		resource += "/" + a.Subresource
	}
	for _, r := range g.rules {
		if matches(r.Verbs, a.Verb) && matches(r.APIGroups, a.Group) &&
			(matches(r.Resources, resource) || a.Subresource != "" && slices.Contains(r.Resources, "*/"+a.Subresource)) &&
			(len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, a.Name)) {
			return true
		}
	}
	return false
}

func matches(list []string, v string) bool {
	return slices.Contains(list, "*") || slices.Contains(list, v)
}

// saUser is the user name a service account authenticates as.
func saUser(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}
