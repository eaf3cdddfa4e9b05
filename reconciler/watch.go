package reconciler

import (
	"context"
	"fmt"
	"reflect"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// watcher watches the objects of one source, one informer per resource, and queues every
// object that changes for a drift check. Only objects labelled with the source are watched;
// one that loses the label looks deleted, and is checked too.
type watcher struct {
	// ctx bounds the informers' lives.
	ctx      context.Context
	client   dynamic.Interface
	selector string
	queue    workqueue.TypedRateLimitingInterface[objKey]

	mu        sync.Mutex
	informers map[schema.GroupVersionResource]*runningInformer
}

type runningInformer struct {
	informer cache.SharedIndexInformer
	cancel   context.CancelFunc
	done     chan struct{}
}

// newWatcher returns a watcher whose informers run until ctx is done or it is stopped.
func newWatcher(ctx context.Context, client dynamic.Interface, selector string) *watcher {
	return &watcher{
		ctx:       ctx,
		client:    client,
		selector:  selector,
		queue:     workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[objKey]()),
		informers: map[schema.GroupVersionResource]*runningInformer{},
	}
}

// watch makes sure exactly the given resources are watched, and waits, bounded by ctx, until
// the informers of newly watched ones have listed their objects.
func (w *watcher) watch(ctx context.Context, gvrs map[schema.GroupVersionResource]bool) error {
	w.mu.Lock()
	var started []*runningInformer
	for gvr, ri := range w.informers {
		if !gvrs[gvr] {
			ri.cancel()
			delete(w.informers, gvr)
		}
	}
	for gvr := range gvrs {
		if _, ok := w.informers[gvr]; ok {
			continue
		}
		inf := dynamicinformer.NewFilteredDynamicInformer(w.client, gvr, metav1.NamespaceAll, 0, cache.Indexers{},
			func(o *metav1.ListOptions) { o.LabelSelector = w.selector }).Informer()
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
			AddFunc: func(obj any, initial bool) {
				if !initial {
					w.enqueue(obj)
				}
			},
			UpdateFunc: func(old, obj any) {
				if !sameDesiredState(old, obj) {
					w.enqueue(obj)
				}
			},
			DeleteFunc: w.enqueue,
		}); err != nil {
			w.mu.Unlock()
			return fmt.Errorf("watch %s: %w", gvr, err)
		}
		ictx, cancel := context.WithCancel(w.ctx)
		ri := &runningInformer{informer: inf, cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(ri.done)
			inf.RunWithContext(ictx)
		}()
		w.informers[gvr] = ri
		started = append(started, ri)
	}
	w.mu.Unlock()
	for _, ri := range started {
		if !cache.WaitForCacheSync(ctx.Done(), ri.informer.HasSynced) {
			return fmt.Errorf("watch managed objects: %w", context.Cause(ctx))
		}
	}
	return nil
}

// get returns the cached object; ok is false when the resource is not watched (or not yet
// listed), and the object is nil when the cache does not hold it.
func (w *watcher) get(gvr schema.GroupVersionResource, namespace, name string) (u *unstructured.Unstructured, ok bool) {
	w.mu.Lock()
	ri := w.informers[gvr]
	w.mu.Unlock()
	if ri == nil || !ri.informer.HasSynced() {
		return nil, false
	}
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	obj, exists, err := ri.informer.GetStore().GetByKey(key)
	if err != nil || !exists {
		return nil, true
	}
	cached, isU := obj.(*unstructured.Unstructured)
	if !isU {
		return nil, true
	}
	return cached.DeepCopy(), true
}

func (w *watcher) enqueue(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if u, ok := obj.(*unstructured.Unstructured); ok {
		w.queue.Add(keyOf(u))
	}
}

// stop stops every informer and the queue, and waits for the informers to return.
func (w *watcher) stop() {
	w.queue.ShutDown()
	w.mu.Lock()
	running := w.informers
	w.informers = map[schema.GroupVersionResource]*runningInformer{}
	w.mu.Unlock()
	for _, ri := range running {
		ri.cancel()
		<-ri.done
	}
}

// sameDesiredState reports whether two versions of a watched object differ only in what is
// not desired state: status, the resource version and the managed fields' times. Updates of
// status by controllers are therefore not checked for drift.
func sameDesiredState(a, b any) bool {
	ua, ok1 := a.(*unstructured.Unstructured)
	ub, ok2 := b.(*unstructured.Unstructured)
	if !ok1 || !ok2 {
		return false
	}
	ca, cb := comparableState(ua), comparableState(ub)
	delete(ca, "status")
	delete(cb, "status")
	stripStatusManagers(ca)
	stripStatusManagers(cb)
	return reflect.DeepEqual(ca, cb)
}

// stripStatusManagers drops managed fields entries of the status subresource from a
// comparable object.
func stripStatusManagers(c map[string]any) {
	md, _ := c["metadata"].(map[string]any)
	mf, _ := md["managedFields"].([]any)
	if mf == nil {
		return
	}
	kept := mf[:0:0]
	for _, e := range mf {
		if m, ok := e.(map[string]any); ok && m["subresource"] == "status" {
			continue
		}
		kept = append(kept, e)
	}
	md["managedFields"] = kept
}
