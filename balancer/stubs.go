package balancer

import "net/netip"

// STUBS: replaced by the real implementation. Signatures are the contract.

// NodeState is a node's passive health, shared by all event loops (atomics).
type NodeState struct {
	failUntil int64 // unix nanos; the node is skipped until then
	fails     int32 // consecutive failures
}

// Registry keeps NodeState by (upstream key, "host:port") across table
// generations. It is safe for concurrent use; Build calls State while
// building, event loops only use the returned pointers.
type Registry struct{}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { panic("todo") }

// State returns the NodeState for (upstreamKey, node), creating it once.
func (r *Registry) State(upstreamKey, node string) *NodeState { panic("todo") }

// Prune drops states whose upstream key is not in keep (called after a swap).
func (r *Registry) Prune(keep map[string]struct{}) { panic("todo") }

// Fail records a failure (connect error, timeout, reset) at now (unix nanos):
// the node is skipped for a fail timeout (10 s, nginx's fail_timeout).
func (s *NodeState) Fail(now int64) { panic("todo") }

// Succeed clears the failure record.
func (s *NodeState) Succeed() { panic("todo") }

// Healthy reports whether the node may be picked at now.
func (s *NodeState) Healthy(now int64) bool { panic("todo") }

// Build finishes u after its fields are set: sorts Nodes by priority, builds
// the chash ring. It runs on the builder goroutine, never on a loop.
func (u *Upstream) Build() error { panic("todo") }

// Cursor is one event loop's picking state for one Upstream: smooth WRR
// current weights, least_conn active counts, ewma scores, the next address
// index per node. Only its loop touches it, so it needs no lock; Pick does
// not allocate.
type Cursor struct {
	current []int
	active  []int32
	ewma    []float64
	ewmaAt  []int64
	addrIdx []uint32
}

// NewCursor returns a cursor sized for u.
func NewCursor(u *Upstream) *Cursor { panic("todo") }

// Carry copies the position from prev (a cursor of an earlier generation of
// the same Upstream.Key) when the node lists match by host:port, so a config
// change does not reset the rotation (APISIX #4684).
func (c *Cursor) Carry(prev *Cursor, prevUp, u *Upstream) { panic("todo") }

// Tried is a set of node indexes already tried by one request (retries).
type Tried uint64

// Pick chooses a node of u for one try: among the healthy nodes of the
// highest priority group that has any (all nodes when none is healthy, as
// APISIX), skipping nodes in tried, by u.Kind; hashKey is the chash key's
// value for this request. It returns the node index and the address to
// dial, or -1 when no node is left. now is unix nanos.
func (c *Cursor) Pick(u *Upstream, tried Tried, hashKey []byte, now int64) (node int, addr netip.AddrPort) {
	panic("todo")
}

// Start and Done bracket one request to node i (least_conn counts, ewma
// latency in nanoseconds).
func (c *Cursor) Start(i int)                          { panic("todo") }
func (c *Cursor) Done(i int, latency int64, now int64) { panic("todo") }
