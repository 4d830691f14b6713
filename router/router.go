// Package router owns the routing table: Build turns a model.Snapshot into an
// immutable Table (routes compiled: URI exact and prefix, hosts, methods,
// remote_addrs, vars expressions, priority; upstreams compiled into
// balancer.Upstream), and Publisher hands the current Table to the data plane
// through an atomic pointer.
//
// Build runs on the builder goroutine (admin or standalone loader), never on
// an event loop. A Table is read-only once built: event loops call Match
// concurrently without synchronisation. A request keeps the Table it loaded
// until it ends, so in-flight requests finish on their table.
package router

import (
	"net/netip"
	"sync/atomic"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/engine/http1"
	"github.com/sluice-gw/sluice/metrics"
	"github.com/sluice-gw/sluice/plugin"
)

// Route is a compiled route.
type Route struct {
	ID       string
	Name     string // the route's name ("" if none): prometheus prefer_name
	Priority int
	// Upstream is the route's upstream (inline, upstream_id, or its
	// service's); nil when the route has none (503 at request time).
	Upstream *balancer.Upstream
	// Websocket allows "Upgrade: websocket" (enable_websocket).
	Websocket bool
	// MatchedURI is the configured uri that matched ("/v1/*"), for logs and
	// metrics labels.
	MatchedURI string
	// Chain is the route's compiled plugins (global rules included); nil
	// when none apply.
	Chain *plugin.Chain
	// Broken: the route's upstream, service or plugins did not build
	// (BuildIsolated); it answers 503 and runs nothing.
	Broken bool
	// IsNotFound marks Table.NotFound: after its plugins, a 404.
	IsNotFound bool

	match matcher
}

// Table is an immutable routing table.
type Table struct {
	// Upstreams lists every compiled upstream of the table; Upstreams[i].Index == i.
	Upstreams []*balancer.Upstream
	// Generation increases with every Build of one Builder.
	Generation uint64
	// Rotations lists the per-loop split rotations plugins created; a loop
	// carries positions by Key when it adopts the table.
	Rotations []*plugin.Rotation
	// RouteIDs lists the ids of the routes the table routes to (enabled
	// ones), sorted.
	RouteIDs []string
	// RouteNames lists the names of those routes that have one, sorted
	// (metrics labelled by name: prometheus prefer_name).
	RouteNames []string
	// SplitArms lists the traffic-split arms of the routes (plugins that
	// implement plugin.ArmLister), for metrics.Retain.
	SplitArms []metrics.Arm
	// HashKeys holds each upstream's compiled chash key, by Upstream.Index
	// (zero for upstreams that do not hash on variables).
	HashKeys []HashKey
	// NotFound is what a request no route matched runs when there are
	// global rules: a route without upstream whose chain is theirs. As in
	// APISIX, they run (key-auth answers 401, limit-count counts, and
	// prometheus logs the request) and the answer is then the 404; nil
	// without global rules.
	NotFound *Route

	idx index
}

// Publisher holds the current Table.
type Publisher struct {
	p atomic.Pointer[Table]
	// OnStore, when set, runs after each Store on the storing goroutine
	// (a builder, never an event loop): cmd uses it to drop the metric
	// series of routes the new table no longer has.
	OnStore func(*Table)
}

// Load returns the current table (never nil after the first Store).
func (p *Publisher) Load() *Table { return p.p.Load() }

// Store publishes t; in-flight requests keep the table they loaded.
func (p *Publisher) Store(t *Table) {
	p.p.Store(t)
	if p.OnStore != nil {
		p.OnStore(t)
	}
}

// Request is what matching reads from one request. Match and Expr.Eval use
// its unexported scratch space (the lowercased host, remote_addr as text)
// so that nothing they derive escapes to the heap: keep a Request with the
// connection's state and reuse it rather than building one per call. One
// Request must not be matched from two goroutines at once.
type Request struct {
	*http1.Request
	RemoteAddr netip.Addr
	// Body is the complete request body when a plugin asked for it
	// (post_arg.* variables); nil otherwise.
	Body []byte
	// BodyPending: the request has a body that Body does not hold yet.
	// Match then stops at the first candidate route whose vars read the
	// body, returns nil and sets NeedBody: the caller waits for the body
	// and matches again with Body set. Requests that reach no such route
	// are matched without waiting.
	BodyPending bool
	NeedBody    bool
	// Consumer and RouteID are what plugin conditions read as
	// consumer_name and route_id (set by exprCond.Eval from the plugin
	// context: unknown while routes are matched, as in APISIX).
	Consumer, RouteID string

	hostBuf [maxHost]byte // lowercased host, filled per Match / Eval call
	addrBuf [64]byte      // RemoteAddr as text, filled per call
}

// RouteLabels returns the values a metric's route label may hold while t
// is live: the routes' ids, their names (prometheus prefer_name) and ""
// (requests no route matched, counted by a global rule). A new slice.
func (t *Table) RouteLabels() []string {
	out := make([]string, 0, len(t.RouteIDs)+len(t.RouteNames)+1)
	return append(append(append(out, t.RouteIDs...), t.RouteNames...), "")
}
