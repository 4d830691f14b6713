package limitcount

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/puzpuzpuz/xsync/v3"
)

// The local policy counts in this process, exactly across event loops and
// without a lock on the hot path: each key (a 64-bit xxhash of its value)
// has a window whose current epoch is swapped with a CAS when it ends; the
// request count of an epoch is an atomic.
//
// State lives in a package-level store keyed by the instance's state key
// (route or group, plus the hash of the counting configuration), so a table
// rebuild that keeps the configuration keeps the counters. The store holds
// weak pointers: a limiter no compiled table uses any more is collected,
// and the sweeper drops its entry. The sweeper also deletes windows whose
// epoch ended, so client keys do not pile up.

// epoch is one fixed window of one key: it ends at end (unix nanos) and
// used counts the requests seen in it, admitted or not.
type epoch struct {
	end  int64
	used atomic.Int64
}

// dead marks a window the sweeper is removing from its map.
var dead = &epoch{}

// window is one key's counter: cur is its current epoch (nil until the
// first request).
type window struct {
	cur atomic.Pointer[epoch]
}

func newWindow() *window { return &window{} }

// localLimiter counts every key of one configuration (one route or group).
type localLimiter struct {
	limit   int64 // count
	span    int64 // time_window, nanoseconds
	windows *xsync.MapOf[uint64, *window]
}

// hashKey is the map's hasher: the keys are already xxhash values.
func hashKey(k, seed uint64) uint64 { return k ^ seed }

func newLocal(limit, span int64) *localLimiter {
	return &localLimiter{limit: limit, span: span, windows: xsync.NewMapOfWithHasher[uint64, *window](hashKey)}
}

// incoming counts one request for key hash h at now (unix nanos) and
// returns the requests left in the window, the seconds until it ends, and
// whether the request is admitted. Safe on any goroutine; a fixed window
// starts with the first request of a key (APISIX: the counter's TTL is set
// by its first request). It allocates only when a key gets its first
// window or a new epoch.
func (l *localLimiter) incoming(h uint64, now int64) (remaining, reset int64, ok bool) {
	for {
		w, found := l.windows.Load(h)
		if !found {
			w, _ = l.windows.LoadOrCompute(h, newWindow)
		}
		e := w.cur.Load()
		if e == dead {
			// The sweeper is deleting this expired window; it is gone
			// from the map in a moment.
			runtime.Gosched()
			continue
		}
		if e == nil || now >= e.end {
			ne := &epoch{end: now + l.span}
			ne.used.Store(1)
			if !w.cur.CompareAndSwap(e, ne) {
				continue // another loop started the epoch: count in it
			}
			return l.limit - 1, resetSeconds(l.span), true
		}
		n := e.used.Add(1)
		// Loops cache the time per event: one whose clock lags the loop
		// that started the epoch must not report more than a window.
		left := resetSeconds(min(e.end-now, l.span))
		if n > l.limit {
			return 0, left, false
		}
		return l.limit - n, left, true
	}
}

// sweep deletes the windows whose epoch ended before now.
func (l *localLimiter) sweep(now int64) {
	l.windows.Range(func(h uint64, w *window) bool {
		e := w.cur.Load()
		if e == nil || e == dead || now < e.end {
			return true
		}
		l.windows.Compute(h, func(old *window, loaded bool) (*window, bool) {
			if !loaded {
				return nil, true
			}
			if old != w {
				return old, false
			}
			// Only an epoch nobody replaced meanwhile dies; a loop that
			// loaded w before this sees dead and looks w up again.
			if w.cur.CompareAndSwap(e, dead) {
				return nil, true
			}
			return old, false
		})
		return true
	})
}

// size is the number of keys with a window (tests).
func (l *localLimiter) size() int { return l.windows.Size() }

// limiters is the local state of every configuration, by state key.
var limiters = xsync.NewMapOf[string, weak.Pointer[localLimiter]]()

// getLocal returns the limiter for key, the one a previous table uses when
// it is still alive.
func getLocal(key string, limit, span int64) *localLimiter {
	startSweeper()
	var out *localLimiter
	limiters.Compute(key, func(old weak.Pointer[localLimiter], loaded bool) (weak.Pointer[localLimiter], bool) {
		if loaded {
			if l := old.Value(); l != nil && l.limit == limit && l.span == span {
				out = l
				return old, false
			}
		}
		out = newLocal(limit, span)
		return weak.Make(out), false
	})
	return out
}

// sweepEvery is how often expired windows and unused limiters are dropped.
const sweepEvery = 10 * time.Second

var sweepOnce sync.Once

func startSweeper() {
	sweepOnce.Do(func() {
		go func() {
			t := time.NewTicker(sweepEvery)
			for range t.C {
				sweepAll(time.Now().UnixNano())
			}
		}()
	})
}

// sweepAll drops collected limiters and the expired windows of the others.
func sweepAll(now int64) {
	limiters.Range(func(k string, wp weak.Pointer[localLimiter]) bool {
		l := wp.Value()
		if l != nil {
			l.sweep(now)
			return true
		}
		limiters.Compute(k, func(old weak.Pointer[localLimiter], loaded bool) (weak.Pointer[localLimiter], bool) {
			if !loaded {
				return old, true
			}
			return old, old == wp
		})
		return true
	})
}
