package apibreaker

import (
	"runtime"
	"sync/atomic"
	"weak"

	"github.com/cespare/xxhash/v2"
	"github.com/puzpuzpuz/xsync/v3"

	"github.com/sluice-gw/sluice/engine/http1"
	"github.com/sluice-gw/sluice/plugin"
)

// state is one breaker: APISIX's three shared-dict keys for one request
// Host + URI ("unhealthy-", "healthy-", "unhealthy-lasttime"). Every event
// loop reads and writes it through atomics; like APISIX's shared dict, the
// three counters are not updated as one, and a lost race only shifts a
// count by one.
type state struct {
	unhealthy atomic.Int64 // unhealthy upstream statuses since the last reset
	healthy   atomic.Int64 // healthy upstream statuses since the last unhealthy one
	last      atomic.Int64 // unix seconds of the last trip; 0: never tripped
}

// maxStates bounds the breakers one store keeps (APISIX's shared dict is
// bounded too, by size, with LRU eviction). A new Host + URI that finds the
// store full is not tracked, and starts a pass that evicts idle breakers
// (startSweep).
const maxStates = 1 << 14

// store holds the breakers of one compiled configuration in one scope
// (route, service or global rule), keyed by a hash of the request's Host
// and URI. It outlives a table rebuild that keeps the configuration, and is
// dropped once no table uses it.
type store struct {
	m         *xsync.MapOf[uint64, *state]
	n         atomic.Int64 // entries in m (xsync's Size walks its stripes)
	lastSweep atomic.Int64 // unix seconds of the last eviction pass
	sweeping  atomic.Bool  // an eviction pass is running
	maxSec    int64        // max_breaker_sec: a trip older than this is over
}

// stores maps scope + canonical configuration to its live store. An entry
// holds its store weakly; when the last table using the store is collected,
// a cleanup removes the entry, so edits and deletions do not leak.
var stores = xsync.NewMapOf[string, weak.Pointer[store]]()

// storeFor returns the store for id, creating it if no live one exists.
func storeFor(id string, maxSec int64) *store {
	var out *store
	stores.Compute(id, func(old weak.Pointer[store], loaded bool) (weak.Pointer[store], bool) {
		if loaded {
			if s := old.Value(); s != nil {
				out = s
				return old, false
			}
		}
		out = &store{m: xsync.NewMapOf[uint64, *state](), maxSec: maxSec}
		wp := weak.Make(out)
		runtime.AddCleanup(out, dropStore, storeRef{id: id, wp: wp})
		return wp, false
	})
	return out
}

type storeRef struct {
	id string
	wp weak.Pointer[store]
}

// dropStore removes a collected store's entry unless a newer store took
// its place.
func dropStore(r storeRef) {
	stores.Compute(r.id, func(old weak.Pointer[store], loaded bool) (weak.Pointer[store], bool) {
		return old, loaded && old == r.wp
	})
}

// key hashes nginx's $host (the request host, lowercased, without port)
// followed by $uri (the request path), as APISIX's key
// core.request.get_host(ctx) .. ctx.var.uri. It does not allocate.
func key(r *http1.Request) uint64 {
	var d xxhash.Digest
	d.ResetWithSeed(plugin.HashSeed)
	h := plugin.StripPort(r.Host)
	var buf [64]byte
	for len(h) > 0 {
		n := copy(buf[:], h)
		for i := range n {
			if ch := buf[i]; 'A' <= ch && ch <= 'Z' {
				buf[i] = ch + ('a' - 'A')
			}
		}
		d.Write(buf[:n])
		h = h[n:]
	}
	d.Write(r.Path)
	return d.Sum64()
}

// load returns the breaker for k, or nil.
// empty reports whether no breaker exists yet (the common case: nothing
// failed), so callers can skip computing a key.
func (s *store) empty() bool { return s.n.Load() == 0 }

func (s *store) load(k uint64) *state {
	if s.n.Load() == 0 {
		return nil
	}
	st, _ := s.m.Load(k)
	return st
}

func newState() *state { return &state{} }

// loadOrCreate returns the breaker for k, creating it (one allocation);
// nil when the store is full of breakers that cannot be evicted yet.
func (s *store) loadOrCreate(k uint64, nowSec int64) *state {
	if st, ok := s.m.Load(k); ok {
		return st
	}
	if s.n.Load() >= maxStates {
		s.startSweep(nowSec)
		return nil
	}
	st, loaded := s.m.LoadOrCompute(k, newState)
	if !loaded {
		s.n.Add(1)
	}
	return st
}

// startSweep evicts idle breakers on a goroutine of its own, not on the
// event loop that found the store full (a pass walks up to maxStates
// entries): breakers that are not open and have not tripped within
// max_breaker_sec (APISIX lets the lasttime key expire after
// max_breaker_sec). At most one pass runs at a time, at most once a second
// per store; meanwhile new keys are not tracked.
func (s *store) startSweep(nowSec int64) {
	prev := s.lastSweep.Load()
	if prev == nowSec || !s.lastSweep.CompareAndSwap(prev, nowSec) {
		return
	}
	if !s.sweeping.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer s.sweeping.Store(false)
		s.m.Range(func(k uint64, st *state) bool {
			if last := st.last.Load(); last == 0 || last+s.maxSec < nowSec {
				if _, ok := s.m.LoadAndDelete(k); ok {
					s.n.Add(-1)
				}
			}
			return true
		})
	}()
}
