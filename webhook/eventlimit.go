package webhook

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/utils/clock"
	"k8s.io/utils/lru"
)

// Bounds on the Events the guard writes. Every decision is logged; Events, which the API
// server stores, are limited so that no caller can fill etcd with them.
const (
	// EventBurst is how many Events the guard writes in a burst, whoever causes them.
	EventBurst = 200
	// EventsPerSecond is the sustained rate of Events the guard writes.
	EventsPerSecond = 1
	// EventBurstPerKey is how many Events one user causes in a burst with one Event reason on
	// one object.
	EventBurstPerKey = 3
	// EventIntervalPerKey is how often after that burst one more such Event is written.
	EventIntervalPerKey = time.Minute
	// eventKeys is how many user/reason/object keys the limiter remembers.
	eventKeys = 1024
)

// eventKey is what the per-key limit counts Events by.
type eventKey struct {
	user, reason, namespace, name, resource string
}

// eventLimiter decides whether an Event may be written: first by its key, so that one user
// repeating one change cannot use up the budget, then by the budget of all Events, so that
// many distinct users (forged or not) cannot either. The clock is the guard's.
type eventLimiter struct {
	mu    sync.Mutex
	clock clock.PassiveClock
	total *rate.Limiter
	keys  *lru.Cache
}

func newEventLimiter(clk clock.PassiveClock) *eventLimiter {
	return &eventLimiter{
		clock: clk,
		total: rate.NewLimiter(EventsPerSecond, EventBurst),
		keys:  lru.New(eventKeys),
	}
}

// allow reports whether an Event for key may be written now, and uses up its share if so.
func (l *eventLimiter) allow(key eventKey) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	var perKey *rate.Limiter
	if v, ok := l.keys.Get(key); ok {
		perKey = v.(*rate.Limiter)
	} else {
		perKey = rate.NewLimiter(rate.Every(EventIntervalPerKey), EventBurstPerKey)
		l.keys.Add(key, perKey)
	}
	if !perKey.AllowN(now, 1) {
		return false
	}
	return l.total.AllowN(now, 1)
}
