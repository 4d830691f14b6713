package balancer

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/puzpuzpuz/xsync/v3"
)

// Passive health, as nginx's server parameters max_fails=1 fail_timeout=10s:
// MaxFails failures within FailTimeout take a node out for FailTimeout.
const (
	MaxFails    = 1
	FailTimeout = 10 * time.Second
)

// NodeState is a node's passive health, shared by all event loops. Every
// method is safe for concurrent use (atomics only), does not allocate, and
// is safe on a nil *NodeState (a nil state is always healthy).
type NodeState struct {
	failUntil atomic.Int64 // unix nanos; the node is skipped until then
	windowEnd atomic.Int64 // unix nanos; end of the window fails counts in
	fails     atomic.Int32 // failures within the window
}

// Fail records a failure (connect error, timeout, reset) at now (unix
// nanos). MaxFails failures within FailTimeout take the node out of
// rotation for FailTimeout (nginx max_fails / fail_timeout). Concurrent
// calls from several loops may race on the window; either outcome is a
// valid nginx-like state.
func (s *NodeState) Fail(now int64) {
	if s == nil {
		return
	}
	if now >= s.windowEnd.Load() { // nginx: a new fail_timeout window
		s.fails.Store(0)
		s.windowEnd.Store(now + int64(FailTimeout))
	}
	if s.fails.Add(1) >= MaxFails {
		s.failUntil.Store(now + int64(FailTimeout))
	}
}

// Succeed clears the failure record. It only writes when there is something
// to clear, so the common path does not bounce the cache line between loops.
func (s *NodeState) Succeed() {
	if s == nil {
		return
	}
	if s.fails.Load() != 0 {
		s.fails.Store(0)
	}
	if s.failUntil.Load() != 0 {
		s.failUntil.Store(0)
	}
	if s.windowEnd.Load() != 0 {
		s.windowEnd.Store(0)
	}
}

// Healthy reports whether the node may be picked at now (unix nanos).
func (s *NodeState) Healthy(now int64) bool {
	return s == nil || now >= s.failUntil.Load()
}

// Registry keeps NodeState by (upstream key, "host:port") across table
// generations. It is safe for concurrent use; Build calls State while
// building, event loops only use the returned pointers.
type Registry struct {
	m *xsync.MapOf[string, *NodeState]
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{m: xsync.NewMapOf[string, *NodeState]()}
}

// State returns the NodeState for (upstreamKey, node), creating it once:
// every call with the same pair returns the same pointer until Prune drops
// it. node is "host:port". It allocates the key string; call it at build
// time, not per request.
func (r *Registry) State(upstreamKey, node string) *NodeState {
	s, _ := r.m.LoadOrCompute(upstreamKey+"\x00"+node, func() *NodeState { return new(NodeState) })
	return s
}

// Prune drops states whose upstream key is not in keep (called by the
// builder after a swap). Loops still holding a dropped pointer keep using
// it until they move to the new table; it is simply no longer shared.
func (r *Registry) Prune(keep map[string]struct{}) {
	r.m.Range(func(k string, _ *NodeState) bool {
		up := k
		if i := strings.IndexByte(k, 0); i >= 0 {
			up = k[:i]
		}
		if _, ok := keep[up]; !ok {
			r.m.Delete(k) // xsync: deleting while ranging is allowed
		}
		return true
	})
}

// Len returns the number of states held (for tests and stats).
func (r *Registry) Len() int { return r.m.Size() }
