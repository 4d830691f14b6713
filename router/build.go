package router

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/metrics"
	"github.com/sluice-gw/sluice/model"
	"github.com/sluice-gw/sluice/plugin"
)

// Resolver resolves node host names (net.Resolver.LookupNetIP in production,
// a fake in tests).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Builder builds tables. It keeps what must outlive a table (node health in
// Registry) between builds. Not safe for concurrent use: one builder
// goroutine owns it.
type Builder struct {
	// Registry holds node health across generations; Build creates one
	// when nil.
	Registry *balancer.Registry
	// Resolver resolves host-name nodes; nil means net.DefaultResolver.
	Resolver Resolver
	// Loops is the number of event loops (per-loop plugin state);
	// 0 means runtime.GOMAXPROCS(0), the engine's default.
	Loops int
	// PluginAttr is config.yaml's plugin_attr: plugin name → its object.
	PluginAttr map[string]json.RawMessage

	gen uint64 // Generation of the last successful Build
	// dns caches answers within one Build (a host named by several
	// upstreams is looked up once); it is dropped when Build returns, so
	// every Build re-resolves (DNS re-resolution is done by rebuilding).
	dns    map[string][]netip.Addr
	dnsErr map[string]error // names that failed in this Build (dns holds nil for them)
	// tolerant (BuildTolerant): a node whose host does not resolve is
	// left out, its host recorded in skipped, instead of failing Build
	tolerant bool
	tolerate func(host string) bool
	skipped  []string
	isolate  bool             // BuildIsolated
	broken   map[string]error // what the last isolated Build left out
}

// UnresolvedError is a Build failure because a node's host name did not
// resolve.
type UnresolvedError struct {
	Host string
	Err  error
}

func (e *UnresolvedError) Error() string { return fmt.Sprintf("resolve host %q: %v", e.Host, e.Err) }
func (e *UnresolvedError) Unwrap() error { return e.Err }

// BuildTolerant is Build that leaves out the nodes whose host name does
// not resolve, when tolerate(host) says so (nil: every host), instead of
// failing (an upstream left without nodes answers 502, as one configured
// without any), and returns the hosts left out. A host tolerate refuses
// fails the build as in Build. A gateway must start, and keep taking
// writes, while one upstream's DNS is down; the periodic re-resolution
// brings the nodes back.
func (b *Builder) BuildTolerant(snap *model.Snapshot, tolerate func(host string) bool) (*Table, []string, error) {
	t, rep, err := b.buildWith(snap, tolerate, false)
	return t, rep.Unresolved, err
}

// Report says what a BuildIsolated left out.
type Report struct {
	// Unresolved: hosts whose nodes were left out (BuildTolerant's).
	Unresolved []string
	// Broken: the routes, services and plugin_configs that did not
	// build, by "routes/<id>" (etc.), with why.
	Broken map[string]error
}

// BuildIsolated is BuildTolerant where one item that does not build does
// not fail the whole table: a route whose upstream, service or plugins do
// not build keeps its place in the table and answers 503 (its requests
// must not fall through to a less specific route without its plugins), and
// what of its match does not compile is dropped (it matches more); a
// service or plugin_config whose plugins do not build on their own is
// reported too. A route without a path is left out. Global rules stay
// strict: leaving one out could drop authentication
// from every route, so a global rule that does not build fails the build;
// the Report still lists it ("global_rules/<id>") and every other item
// that did not build, and the error is the first global rule's.
// A gateway sharing its store with other writers uses it: a reference
// another writer left dangling must not block every later write.
func (b *Builder) BuildIsolated(snap *model.Snapshot, tolerate func(host string) bool) (*Table, Report, error) {
	return b.buildWith(snap, tolerate, true)
}

func (b *Builder) buildWith(snap *model.Snapshot, tolerate func(host string) bool, isolate bool) (*Table, Report, error) {
	b.tolerant, b.tolerate, b.skipped, b.isolate = true, tolerate, nil, isolate
	defer func() { b.tolerant, b.tolerate, b.skipped, b.isolate, b.broken = false, nil, nil, false, nil }()
	t, err := b.Build(snap)
	rep := Report{Unresolved: slices.Compact(slices.Sorted(slices.Values(b.skipped))), Broken: b.broken}
	return t, rep, err
}

// build is the state of one Build call.
type build struct {
	shared map[string]any // plugin.Env.Shared
	b      *Builder
	snap   *model.Snapshot
	ups    map[string]*balancer.Upstream // compiled upstreams by Key
	list   []*balancer.Upstream          // Table.Upstreams

	global    []plugin.Entry     // compiled global rules
	rotations []*plugin.Rotation // Table.Rotations
	cons      []plugin.Consumer  // snapshot consumers, sorted
	arms      []metrics.Arm      // Table.SplitArms
	hashKeys  []HashKey          // Table.HashKeys
	// broken (BuildIsolated only): what did not build, by
	// "routes/<id>", "services/<id>", "plugin_configs/<id>"
	broken map[string]error
}

func (b *Builder) loops() int {
	if b.Loops > 0 {
		return b.Loops
	}
	return runtime.GOMAXPROCS(0)
}

// Build compiles snap into a new Table. Only routes whose status is not 0
// are routed. Errors name the resource and field
// (`router: route "r1": upstream_id "9" not found`). Host-name nodes are
// resolved here with Resolver (a failed lookup is an error naming the host).
// Build runs on the builder goroutine, never on an event loop; it allocates
// freely and may block on DNS (5 s per lookup at most).
func (b *Builder) Build(snap *model.Snapshot) (*Table, error) {
	if b.Registry == nil {
		b.Registry = balancer.NewRegistry()
	}
	if b.Resolver == nil {
		b.Resolver = net.DefaultResolver
	}
	b.dns = make(map[string][]netip.Addr)
	defer func() { b.dns, b.dnsErr = nil, nil }()

	if snap == nil {
		snap = &model.Snapshot{}
	}
	s := &build{b: b, snap: snap, ups: make(map[string]*balancer.Upstream), shared: map[string]any{}}
	if b.isolate {
		s.broken = map[string]error{}
	}
	t := &Table{}
	var err error
	// Isolated, a global rule that does not build is reported and the
	// rest is built (its report is the caller's baseline), but the build
	// fails: a table without the rule could lack authentication anywhere.
	var globalErr error
	if s.global, err = s.globalEntries(); err != nil {
		if s.broken == nil {
			return nil, err
		}
		globalErr = err
	}
	ib := newIndexBuilder()
	seen := make(map[model.ID]bool, len(snap.Routes))
	for i, mr := range snap.Routes {
		if mr == nil {
			continue
		}
		if mr.ID == "" {
			return nil, fmt.Errorf("router: route #%d: missing id", i)
		}
		if seen[mr.ID] {
			return nil, fmt.Errorf("router: route %q: duplicate id", mr.ID)
		}
		seen[mr.ID] = true
		if mr.Status != nil && *mr.Status == 0 {
			continue // APISIX: status 0 disables the route
		}
		if err := s.route(ib, mr, i); err != nil {
			if s.broken == nil {
				return nil, err
			}
			s.broken["routes/"+string(mr.ID)] = err
		}
		t.RouteIDs = append(t.RouteIDs, string(mr.ID))
		if mr.Name != "" {
			t.RouteNames = append(t.RouteNames, mr.Name)
		}
	}
	if err := s.checkShared(); err != nil {
		return nil, err
	}
	b.broken = s.broken
	if globalErr != nil {
		return nil, globalErr
	}
	t.idx = ib.finish()
	t.Upstreams = s.list
	t.Rotations = s.rotations
	t.SplitArms = s.arms
	t.HashKeys = s.hashKeys
	if len(s.global) > 0 {
		t.NotFound = &Route{Chain: plugin.NewChain(s.global), IsNotFound: true}
	}
	slices.Sort(t.RouteIDs)
	slices.Sort(t.RouteNames)
	t.RouteNames = slices.Compact(t.RouteNames)
	b.gen++
	t.Generation = b.gen
	return t, nil
}

// route compiles one enabled route into ib.
func (s *build) route(ib *indexBuilder, mr *model.Route, seq int) error {
	id := string(mr.ID)
	errf := func(format string, args ...any) error {
		return fmt.Errorf("router: route %q: "+format, append([]any{id}, args...)...)
	}
	// known is the first reason the route cannot work. Strict, it is the
	// build's error. Isolated, the route still takes its place, answering
	// 503, and a restriction that does not compile (methods, remote_addrs,
	// vars) is dropped: the placeholder must catch every request the
	// route was meant for, never let one fall through to another route.
	var known error
	stop := func(err error) bool {
		if known == nil {
			known = err
		}
		return s.broken == nil
	}
	if mr.Invalid != nil && stop(errf("%w", mr.Invalid)) {
		return known
	}
	var svc *model.Service
	if mr.ServiceID != "" {
		svc = s.snap.Services[string(mr.ServiceID)]
		switch {
		case svc == nil:
			if stop(errf("service_id %q not found", mr.ServiceID)) {
				return known
			}
		case svc.Invalid != nil:
			if stop(errf("service %q: %w", mr.ServiceID, svc.Invalid)) {
				return known
			}
		}
	}

	rt := &Route{
		ID:        id,
		Name:      mr.Name,
		Priority:  mr.Priority,
		Websocket: mr.EnableWebsocket || svc != nil && svc.EnableWebsocket,
	}
	rt.match.seq = seq

	for _, m := range mr.Methods {
		bit := methodBit([]byte(m))
		if bit == 0 {
			if stop(errf("invalid method %q", m)) {
				return known
			}
			rt.match.methods = 0
			break
		}
		rt.match.methods |= bit
	}

	addrs := mr.RemoteAddrs
	if mr.RemoteAddr != "" {
		addrs = append([]string{mr.RemoteAddr}, addrs...)
	}
	for _, a := range addrs {
		p, err := parsePrefix(a)
		if err != nil {
			if stop(errf("invalid remote_addrs %q", a)) {
				return known
			}
			rt.match.remote = nil
			break
		}
		rt.match.remote = append(rt.match.remote, p)
	}

	vars, err := CompileVars(mr.Vars)
	if err != nil && stop(errf("%w", err)) {
		return known
	}
	rt.match.vars = vars // nil when it did not compile

	var uris []string
	if mr.URI != "" {
		uris = append(uris, mr.URI)
	}
	for _, u := range mr.URIs {
		if u != "" {
			uris = append(uris, u)
		} else if stop(errf("empty uri")) {
			return known
		}
	}
	if len(uris) == 0 {
		// nowhere to put it, even isolated (nothing could match it)
		err := errf("uri or uris is required")
		if known != nil {
			err = known
		}
		return err
	}

	// radixtree_host_uri: the route's host/hosts, else its service's hosts.
	// A broken route whose hosts are unknown (its service is gone, or a
	// host list did not read) is placed under every host.
	hosts := mr.Hosts
	if mr.Host != "" {
		hosts = append([]string{mr.Host}, hosts...)
	}
	everywhere := mr.HostsUnknown
	if len(hosts) == 0 && !everywhere && mr.ServiceID != "" {
		if svc == nil || svc.HostsUnknown {
			everywhere = true // (isolated: strict has returned)
		} else {
			hosts = svc.Hosts
		}
	}
	lower := make([]string, 0, len(hosts))
	for _, h := range hosts {
		if h == "" {
			if stop(errf("empty host")) {
				return known
			}
			continue // (radixtree would match only an empty Host)
		}
		h = strings.ToLower(h)
		if !slices.Contains(lower, h) {
			lower = append(lower, h)
		}
	}

	// What the route matches is known: what it does may still fail (a
	// missing upstream, a plugin that does not compile). Isolated, the
	// route keeps its place and answers 503, so its requests never fall
	// through to a less specific route that lacks its plugins; what a
	// failing route registered for others (a limit-count group's
	// settings) is taken back.
	err = known
	var shared map[string]any
	if s.broken != nil {
		shared = maps.Clone(s.shared)
	}
	var up *balancer.Upstream
	if err == nil {
		up, err = s.routeUpstream(mr, svc, errf)
	}
	if err == nil {
		rt.Upstream = up
		rt.Chain, err = s.routeChain(mr, svc, up)
	}
	if err != nil {
		if s.broken == nil {
			return err
		}
		rt.Upstream, rt.Chain, rt.Broken = nil, nil, true
		s.shared = shared
	}

	for _, u := range uris {
		e := *rt // one *Route per uri: MatchedURI is the pattern that matched
		e.MatchedURI = u
		e.match.uriLen = len(u)
		if everywhere {
			ib.everywhere = append(ib.everywhere, placed{u, &e})
			continue
		}
		ib.add(lower, u, &e)
	}
	return err // nil, or why an isolated route is broken
}

// routeUpstream resolves a route's upstream: inline upstream > upstream_id >
// the service's inline upstream or upstream_id. A route timeout overrides
// the upstream's; a shared upstream then gets a route's own compiled copy
// (Key suffix "/route:<id>").
// Reference errors go through errf (they name the route); compile errors
// name the upstream's key.
func (s *build) routeUpstream(mr *model.Route, svc *model.Service, errf func(string, ...any) error) (*balancer.Upstream, error) {
	id := string(mr.ID)
	var key string
	var m *model.Upstream
	switch {
	case mr.Upstream != nil:
		key, m = "routes/"+id+"/upstream", mr.Upstream
		if mr.Timeout != nil {
			c := *m
			c.Timeout = mr.Timeout
			m = &c
		}
		return s.upstream(key, m)
	case mr.UpstreamID != "":
		uid := string(mr.UpstreamID)
		m = s.snap.Upstreams[uid]
		if m == nil {
			return nil, errf("upstream_id %q not found", uid)
		}
		key = "upstreams/" + uid
	case svc != nil && svc.Upstream != nil:
		key, m = "services/"+string(svc.ID)+"/upstream", svc.Upstream
	case svc != nil && svc.UpstreamID != "":
		uid := string(svc.UpstreamID)
		m = s.snap.Upstreams[uid]
		if m == nil {
			return nil, errf("service %q: upstream_id %q not found", svc.ID, uid)
		}
		key = "upstreams/" + uid
	default:
		return nil, nil // the engine answers 503
	}
	if mr.Timeout != nil {
		c := *m
		c.Timeout = mr.Timeout
		return s.upstream(key+"/route:"+id, &c)
	}
	return s.upstream(key, m)
}

// upstream returns the upstream compiled under key in this build, compiling
// it on first use and giving it the next Index.
func (s *build) upstream(key string, m *model.Upstream) (*balancer.Upstream, error) {
	if u := s.ups[key]; u != nil {
		return u, nil
	}
	u, err := s.b.compileUpstream(key, m)
	if err != nil {
		return nil, err
	}
	hk := compileHashKey(u)
	u.Index = len(s.list)
	s.list = append(s.list, u)
	s.hashKeys = append(s.hashKeys, hk)
	s.ups[key] = u
	return u, nil
}

// indexBuilder collects (hosts, uri, route) entries into an index.
type indexBuilder struct {
	ix    index
	trees []*uriTree
	// everywhere: broken routes whose hosts are unknown, filed under
	// every host and the host-less tree by finish
	everywhere []placed
}

type placed struct {
	uri string
	rt  *Route
}

func newIndexBuilder() *indexBuilder { return &indexBuilder{} }

func (ib *indexBuilder) tree(m *map[string]*uriTree, key string) *uriTree {
	if *m == nil {
		*m = make(map[string]*uriTree)
	}
	t := (*m)[key]
	if t == nil {
		t = &uriTree{}
		(*m)[key] = t
		ib.trees = append(ib.trees, t)
	}
	return t
}

func (ib *indexBuilder) add(hosts []string, uri string, rt *Route) {
	if len(hosts) == 0 {
		if ib.ix.any == nil {
			ib.ix.any = &uriTree{}
			ib.trees = append(ib.trees, ib.ix.any)
		}
		ib.ix.any.add(uri, rt)
		return
	}
	for _, h := range hosts {
		if suffix, ok := strings.CutPrefix(h, "*"); ok {
			// radixtree_host_uri reverses hosts and prefix-matches, so
			// "*.foo.com" is any host ending in ".foo.com" (not "foo.com").
			t := ib.tree(&ib.ix.hostWild, suffix)
			t.add(uri, rt)
			if !slices.Contains(ib.ix.wildLens, len(suffix)) {
				ib.ix.wildLens = append(ib.ix.wildLens, len(suffix))
			}
			continue
		}
		ib.tree(&ib.ix.hostExact, h).add(uri, rt)
	}
}

// add files rt under uri: no '*' is an exact path; otherwise the part
// before the first '*' is a prefix. lua-resty-radixtree only knows a
// trailing '*' ("/v1/*" matches under "/v1/", "/blog/bar*" also matches
// "/blog/bar"); sluice reads "/a/*/b" as the prefix "/a/" too rather than as
// a literal path nobody means.
func (u *uriTree) add(uri string, rt *Route) {
	if i := strings.IndexByte(uri, '*'); i >= 0 {
		if u.root == nil {
			u.root = &rnode{}
		}
		u.root.insert(uri[:i], rt)
		return
	}
	if u.exact == nil {
		u.exact = make(map[string][]*Route)
	}
	u.exact[uri] = append(u.exact[uri], rt)
}

// finish files the routes placed everywhere, sorts every bucket and
// returns the index.
func (ib *indexBuilder) finish() index {
	for _, p := range ib.everywhere {
		ib.add(nil, p.uri, p.rt)
		for _, t := range ib.ix.hostExact {
			t.add(p.uri, p.rt)
		}
		for _, t := range ib.ix.hostWild {
			t.add(p.uri, p.rt)
		}
	}
	for _, t := range ib.trees {
		for _, b := range t.exact {
			sortBucket(b)
		}
		if t.root != nil {
			t.root.walk(func(n *rnode) { sortBucket(n.routes) })
		}
	}
	slices.SortFunc(ib.ix.wildLens, func(a, b int) int { return cmp.Compare(b, a) })
	return ib.ix
}

// sortBucket orders one path's routes: higher priority first, then the
// longer configured uri (lua-resty-radixtree sort_route), then config order.
func sortBucket(b []*Route) {
	slices.SortStableFunc(b, func(x, y *Route) int {
		if c := cmp.Compare(y.Priority, x.Priority); c != 0 {
			return c
		}
		if c := cmp.Compare(y.match.uriLen, x.match.uriLen); c != 0 {
			return c
		}
		return cmp.Compare(x.match.seq, y.match.seq)
	})
}
