package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/util/retry"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// Names, labels and annotations of the ledger's ConfigMaps.
const (
	// NamePrefix starts the name of every ledger ConfigMap:
	// driftless-ledger-<day>-<replica>-<sequence>.
	NamePrefix = "driftless-ledger-"
	// RecordsKey is the data key that holds the records, one JSON object a line.
	RecordsKey = "records"

	labelManagedBy  = "app.kubernetes.io/managed-by"
	labelComponent  = "app.kubernetes.io/component"
	managedBy       = "driftless"
	component       = "ledger"
	labelReplica    = v1alpha1.Group + "/ledger-replica"
	labelDay        = v1alpha1.Group + "/ledger-day"
	annotationBytes = v1alpha1.Group + "/ledger-bytes"
	annotationFirst = v1alpha1.Group + "/ledger-first"
	annotationLast  = v1alpha1.Group + "/ledger-last"
	annotationCount = v1alpha1.Group + "/ledger-records"

	// maxObjectBytes bounds the records of one ConfigMap, well under the API server's 1 MiB,
	// so that each write stays small.
	maxObjectBytes = 256 << 10
)

// Selector selects every ledger ConfigMap.
const Selector = labelManagedBy + "=" + managedBy + "," + labelComponent + "=" + component

var configMapsGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// errFull says the current ConfigMap has no room for the next record.
var errFull = errors.New("ledger configmap is full")

// store appends records to this replica's ConfigMaps. Every write is a read followed by an
// update with the read's resourceVersion (optimistic concurrency), so that two writers with
// the same replica name (a restarted process) append rather than overwrite.
type store struct {
	client    kubernetes.Interface
	meta      metadata.Interface
	namespace string
	replica   string
	// seq is the ConfigMap being filled, per day; rolled says a new one was started.
	seq    map[string]int
	rolled bool
}

// dayOf is the bucket of a record's time: its UTC day.
func dayOf(t time.Time) string { return t.UTC().Format("20060102") }

func objectName(day, replica string, seq int) string {
	return NamePrefix + day + "-" + replica + "-" + strconv.Itoa(seq)
}

var notNameChars = regexp.MustCompile(`[^a-z0-9-]+`)

// replicaName turns a host (pod) name into the replica part of ConfigMap names and labels:
// lowercase letters, digits and dashes, at most 40 characters, with a hash when changed.
func replicaName(host string) string {
	clean := strings.Trim(notNameChars.ReplaceAllString(strings.ToLower(host), "-"), "-")
	if clean == host && len(clean) <= 40 && clean != "" {
		return clean
	}
	h := fnv.New32a()
	h.Write([]byte(host))
	if len(clean) > 31 {
		clean = strings.TrimRight(clean[:31], "-")
	}
	if clean == "" {
		clean = "replica"
	}
	return fmt.Sprintf("%s-%08x", clean, h.Sum32())
}

// append writes recs in order and returns how many were written.
func (s *store) append(ctx context.Context, recs []Record) (int, error) {
	written := 0
	for written < len(recs) {
		day := dayOf(recs[written].Time)
		end := written + 1
		for end < len(recs) && dayOf(recs[end].Time) == day {
			end++
		}
		n, err := s.appendDay(ctx, day, recs[written:end])
		written += n
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// appendDay appends records of one day to this replica's ConfigMaps of that day.
func (s *store) appendDay(ctx context.Context, day string, recs []Record) (int, error) {
	lines := make([][]byte, len(recs))
	for i := range recs {
		b, err := json.Marshal(recs[i])
		if err != nil {
			return 0, fmt.Errorf("encode ledger record: %w", err)
		}
		lines[i] = append(b, '\n')
	}
	done := 0
	for done < len(recs) {
		name := objectName(day, s.replica, s.seq[day])
		var n int
		err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
			var err error
			n, err = s.write(ctx, name, day, recs[done:], lines[done:])
			return err
		})
		switch {
		case errors.Is(err, errFull):
			s.seq[day]++
			s.rolled = true
			continue
		case err != nil:
			return done, fmt.Errorf("write %s/%s: %w", s.namespace, name, err)
		}
		done += n
	}
	return done, nil
}

// write appends as many of lines as fit to the ConfigMap name, creating it when missing.
func (s *store) write(ctx context.Context, name, day string, recs []Record, lines [][]byte) (int, error) {
	cms := s.client.CoreV1().ConfigMaps(s.namespace)
	cm, err := cms.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		cm = nil
	case err != nil:
		return 0, err
	}
	var data bytes.Buffer
	count := 0
	first := recs[0].Time
	if cm != nil {
		data.WriteString(cm.Data[RecordsKey])
		count, _ = strconv.Atoi(cm.Annotations[annotationCount])
		if t, err := time.Parse(time.RFC3339Nano, cm.Annotations[annotationFirst]); err == nil {
			first = t
		}
	}
	n := 0
	last := time.Time{}
	for i, l := range lines {
		if data.Len()+len(l) > maxObjectBytes && (data.Len() > 0 || i > 0) {
			break
		}
		data.Write(l)
		if recs[i].Time.After(last) {
			last = recs[i].Time
		}
		n++
	}
	if n == 0 {
		return 0, errFull
	}
	if cm != nil {
		if t, err := time.Parse(time.RFC3339Nano, cm.Annotations[annotationLast]); err == nil && t.After(last) {
			last = t
		}
	}
	if first.After(last) {
		first = last
	}
	annotations := map[string]string{
		annotationBytes: strconv.Itoa(data.Len()),
		annotationFirst: first.UTC().Format(time.RFC3339Nano),
		annotationLast:  last.UTC().Format(time.RFC3339Nano),
		annotationCount: strconv.Itoa(count + n),
	}
	if cm == nil {
		cm = &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{
				Name: name, Namespace: s.namespace,
				Labels: map[string]string{
					labelManagedBy: managedBy, labelComponent: component,
					labelReplica: s.replica, labelDay: day,
				},
				Annotations: annotations,
			},
			Data: map[string]string{RecordsKey: data.String()},
		}
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: managedBy}); err != nil {
			if apierrors.IsAlreadyExists(err) {
				// Another writer with this replica name created it: read it and try again.
				return 0, apierrors.NewConflict(configMapsGVR.GroupResource(), name, err)
			}
			return 0, err
		}
		return n, nil
	}
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	for k, v := range annotations {
		cm.Annotations[k] = v
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[RecordsKey] = data.String()
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{FieldManager: managedBy}); err != nil {
		return 0, err
	}
	return n, nil
}

// stored is one ledger ConfigMap as the cleanup sees it.
type stored struct {
	name  string
	last  time.Time
	bytes int64
}

// prune deletes the ledger ConfigMaps (of every replica) whose newest record is older than
// retention at now, then the oldest until the rest fit maxSize. It returns the size kept.
func (s *store) prune(ctx context.Context, now time.Time, retention time.Duration, maxSize int64) (int64, int, error) {
	list, err := s.meta.Resource(configMapsGVR).Namespace(s.namespace).List(ctx, metav1.ListOptions{LabelSelector: Selector})
	if err != nil {
		return 0, 0, fmt.Errorf("list ledger configmaps in %s: %w", s.namespace, err)
	}
	items := make([]stored, 0, len(list.Items))
	var total int64
	for _, m := range list.Items {
		st := stored{name: m.Name}
		st.last, _ = time.Parse(time.RFC3339Nano, m.Annotations[annotationLast])
		st.bytes, _ = strconv.ParseInt(m.Annotations[annotationBytes], 10, 64)
		items = append(items, st)
		total += st.bytes
	}
	sort.Slice(items, func(i, j int) bool {
		if !items[i].last.Equal(items[j].last) {
			return items[i].last.Before(items[j].last)
		}
		return items[i].name < items[j].name
	})
	deleted := 0
	var errs []error
	for _, it := range items {
		if now.Sub(it.last) <= retention && total <= maxSize {
			break
		}
		err := s.meta.Resource(configMapsGVR).Namespace(s.namespace).Delete(ctx, it.name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s/%s: %w", s.namespace, it.name, err))
			continue
		}
		total -= it.bytes
		deleted++
	}
	return total, deleted, errors.Join(errs...)
}

// Read returns the records in the ledger ConfigMaps of namespace with a time at or after
// since, oldest first, and how many lines could not be read.
func Read(ctx context.Context, client kubernetes.Interface, namespace string, since time.Time) ([]Record, int, error) {
	var (
		out        []Record
		unreadable int
		cont       string
	)
	for {
		list, err := client.CoreV1().ConfigMaps(namespace).List(ctx, metav1.ListOptions{LabelSelector: Selector, Limit: 16, Continue: cont})
		if err != nil {
			return nil, 0, fmt.Errorf("list ledger configmaps in %s: %w", namespace, err)
		}
		for i := range list.Items {
			cm := &list.Items[i]
			if last, err := time.Parse(time.RFC3339Nano, cm.Annotations[annotationLast]); err == nil && last.Before(since) {
				continue
			}
			for _, line := range strings.Split(cm.Data[RecordsKey], "\n") {
				if strings.TrimSpace(line) == "" {
					continue
				}
				var r Record
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					unreadable++
					continue
				}
				if !r.Time.Before(since) {
					out = append(out, r)
				}
			}
		}
		if cont = list.Continue; cont == "" {
			break
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, unreadable, nil
}
