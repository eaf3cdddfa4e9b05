package installation

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// BreakGlass is one object under an active break-glass.
type BreakGlass struct {
	// Namespace is the object's namespace, empty for cluster-scoped objects.
	Namespace string
	// Object is "<resource>/<name>", such as "configmaps/settings".
	Object string
	// By is who broke the glass, empty when not recorded.
	By string
	// Reason is the reason given.
	Reason string
	// Until is when the break-glass expires.
	Until time.Time
}

// ActiveBreakGlass finds every object whose break-glass holds at now by the contract the
// guard and the reconciler share (v1alpha1.ReadBreakGlass), with maxDuration the guard's
// maximum, reading only metadata, across all listable resources the caller may list. The
// result is sorted by expiry, then namespace and object.
func ActiveBreakGlass(ctx context.Context, restConfig *rest.Config, now time.Time, maxDuration time.Duration) ([]BreakGlass, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(restConfig)
	if err != nil {
		return nil, err
	}
	mc, err := metadata.NewForConfig(restConfig)
	if err != nil {
		return nil, err
	}
	lists, err := dc.ServerPreferredResources()
	if err != nil && len(lists) == 0 {
		return nil, fmt.Errorf("discover resources: %w", err)
	}
	var found []BreakGlass
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") {
				continue
			}
			items, err := mc.Resource(gv.WithResource(r.Name)).List(ctx, metav1.ListOptions{})
			if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("list %s: %w", r.Name, err)
			}
			for _, item := range items.Items {
				c := v1alpha1.ReadBreakGlass(item.Annotations, now, maxDuration)
				if !c.Holds() {
					continue
				}
				found = append(found, BreakGlass{
					Namespace: item.Namespace, Object: r.Name + "/" + item.Name,
					By: c.By, Reason: c.Reason, Until: c.Until,
				})
			}
		}
	}
	sort.Slice(found, func(i, j int) bool {
		if !found[i].Until.Equal(found[j].Until) {
			return found[i].Until.Before(found[j].Until)
		}
		return found[i].Namespace+found[i].Object < found[j].Namespace+found[j].Object
	})
	return found, nil
}

// WriteBreakGlass writes found as `driftless break-glass --list` prints it: a table with the
// time left at now, or "no active break-glass".
func WriteBreakGlass(w io.Writer, found []BreakGlass, now time.Time) error {
	if len(found) == 0 {
		_, err := fmt.Fprintln(w, "no active break-glass")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tOBJECT\tBY\tREASON\tUNTIL\tREMAINING")
	for _, a := range found {
		by := a.By
		if by == "" {
			by = "(not recorded)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Namespace, a.Object, by, a.Reason, a.Until.UTC().Format(time.RFC3339), a.Until.Sub(now).Truncate(time.Second))
	}
	return tw.Flush()
}
