// Package plugin owns the plugin contract: a Plugin is an APISIX name, a
// priority and a Compile step that runs when a routing table is built; the
// Instance it returns implements one or more phase interfaces (Rewriter,
// Accessor, BeforeProxier, HeaderFilterer, BodyFilterer, Logger). Build
// (package router) merges the plugins of a route, its service, its
// plugin_config and the global rules, compiles them and sorts each phase's
// list once into a Chain, so the data plane never sorts or type-asserts.
//
// Register and Compile run on the builder goroutine (admin or standalone
// loader), never on an event loop. Phase methods run on the event loop that
// owns the request: they must not block and should not allocate. Instances
// are immutable after Compile and shared by every loop; state that changes
// per request lives in per-loop slots (Rotation) or atomics.
package plugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"sync"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/engine/http1"
)

// Plugin is one kind of APISIX plugin.
type Plugin interface {
	// Name is the APISIX name, e.g. "traffic-split".
	Name() string
	// Priority orders plugins within a phase: higher runs first, as in APISIX.
	Priority() int
	// Compile checks conf (the plugin's JSON object) against the APISIX
	// schema and returns the immutable Instance the data plane runs. Errors
	// name the field. It runs on the builder goroutine and may allocate.
	Compile(conf json.RawMessage, env *Env) (Instance, error)
}

// RoutePreferrer is implemented by a Plugin whose global-rule instance
// stands aside for a route that has its own (APISIX run_policy
// "prefer_route"), e.g. prometheus, which would otherwise count twice.
type RoutePreferrer interface{ PreferRoute() bool }

// PrefersRoute reports whether p is a RoutePreferrer that prefers the route.
func PrefersRoute(p Plugin) bool {
	rp, ok := p.(RoutePreferrer)
	return ok && rp.PreferRoute()
}

// Instance is a compiled plugin configuration; it implements one or more of
// the phase interfaces.
type Instance any

// Rewriter runs in the rewrite phase (before access), e.g. key-auth,
// proxy-rewrite.
type Rewriter interface{ Rewrite(c *Ctx) Result }

// Accessor runs in the access phase, e.g. limit-count, api-breaker,
// traffic-split.
type Accessor interface{ Access(c *Ctx) Result }

// BeforeProxier runs once the upstream node is chosen, before the upstream
// request head is written (c.Node and c.Addr are set).
type BeforeProxier interface{ BeforeProxy(c *Ctx) }

// HeaderFilterer runs when the upstream's response head arrived, before it
// is written to the client (c.Resp is set; add headers with
// c.AddRespHeaderInt or c.AddRespHeaderLines).
type HeaderFilterer interface{ HeaderFilter(c *Ctx) }

// BodyFilterer sees each response body piece as it is relayed (chunk is
// borrowed: valid only during the call; for chunked responses it is the
// raw chunked framing). It must not keep or modify chunk.
type BodyFilterer interface {
	BodyFilter(c *Ctx, chunk []byte)
}

// Logger runs once when the request ended (after the response or a
// failure), with c.Status, c.UpstreamStatus and the timings set.
type Logger interface{ Log(c *Ctx) }

// NeedsBody is implemented by an Instance that reads the request body in
// its rewrite or access phase (traffic-split's post_arg.* vars): the engine
// then waits for the complete body, up to MaxPeekBody, before those phases.
type NeedsBody interface{ NeedsBody() bool }

// UsageReader is implemented by an Instance that reads c.PromptTokens and
// c.CompletionTokens in Log: the engine then scans the response body for an
// OpenAI-style "usage" object (package plugin's UsageScanner).
type UsageReader interface{ ReadsUsage() bool }

// MaxPeekBody is the largest request body the engine waits for when a
// plugin needs the body; larger bodies stream and c.Body stays nil.
const MaxPeekBody = 64 << 10

// Result ends the request early when Status != 0, like `return code, body`
// in an APISIX phase. Body and Headers are built at Compile time, never per
// request. Headers is raw "Name: value\r\n" lines.
type Result struct {
	Status  int
	Body    []byte
	Headers []byte
}

// pendingStatus marks a Result whose phase continues off the loop (Defer).
const pendingStatus = -1

// Pending reports whether r is the result of Ctx.Defer.
func (r Result) Pending() bool { return r.Status == pendingStatus }

var (
	regMu    sync.RWMutex
	registry = map[string]Plugin{}
)

// Register makes p available under p.Name(). It is called from the init
// function of each plugin package (package plugin/all imports them all);
// registering a name twice panics.
func Register(p Plugin) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[p.Name()]; dup {
		panic("plugin: " + p.Name() + " registered twice")
	}
	registry[p.Name()] = p
}

// Lookup returns the registered plugin named name.
func Lookup(name string) (Plugin, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	p, ok := registry[name]
	return p, ok
}

// Cond is a compiled lua-resty-expr condition (router's vars).
type Cond interface{ Eval(c *Ctx) bool }

// Consumer is an APISIX consumer as plugins see it at Compile time.
type Consumer struct {
	Username string
	Plugins  map[string]json.RawMessage
	// Blocked: a stored consumer that does not validate (another
	// writer's). It authenticates nobody, and a credential it holds
	// authenticates nobody either: an auth plugin must not give it to
	// another consumer holding the same one.
	Blocked bool
}

// Env is what Compile may use. The functions are bound to the table being
// built; they must not be kept after Compile returns.
type Env struct {
	// RouteID is the route the plugin is compiled for ("" for a global rule).
	RouteID string
	// RouteName is that route's name, or "".
	RouteName string
	// ServiceName is the route's service's name, or "".
	ServiceName string
	// ServiceID is the route's service_id, or "".
	ServiceID string
	// Scope names where the configuration came from, for errors and state
	// keys: "route 1", "global_rules 2", ...
	Scope string
	// Global: the plugin belongs to a global rule (it runs for every route).
	Global bool
	// Loops is the number of event loops: the size of per-loop state.
	Loops int
	// RouteUpstream is the route's own upstream (inline, upstream_id or
	// service's); nil when it has none.
	RouteUpstream *balancer.Upstream
	// Upstream returns the compiled upstream with id (an error names it when
	// it does not exist).
	Upstream func(id string) (*balancer.Upstream, error)
	// InlineUpstream compiles an inline upstream object; key identifies it
	// across builds (node health, pools).
	InlineUpstream func(raw json.RawMessage, key string) (*balancer.Upstream, error)
	// Vars compiles a lua-resty-expr vars array.
	Vars func(raw json.RawMessage) (Cond, error)
	// Consumers lists every consumer, sorted by username.
	Consumers []Consumer
	// Rotation returns a per-loop smooth weighted round-robin over weights
	// whose positions are carried to the next table when key and weights'
	// length match (the split does not reset on a config change).
	Rotation func(key string, weights []int) *Rotation
	// Attr is plugin_attr.<name> from config.yaml (nil when absent).
	Attr func(name string) json.RawMessage
	// Shared is one map for the whole build, for checks across routes
	// (limit-count's group: every route in it must configure the same).
	Shared map[string]any
}

// Errorf formats a compile error the Admin API shows as APISIX does:
// "failed to check the configuration of plugin <name> err: <msg>".
func Errorf(name, format string, args ...any) error {
	return fmt.Errorf("failed to check the configuration of plugin %s err: %s", name, fmt.Sprintf(format, args...))
}

// Ctx is one request as plugins see it. The engine owns it (one per
// exchange, recycled) and resets it between requests; slices it holds are
// valid until the request ends. Only the request's event loop touches it.
type Ctx struct {
	// Set by the engine before the rewrite phase.
	Req        *http1.Request // the client's request head
	RemoteAddr netip.Addr
	Loop       int   // event loop index, < Env.Loops
	Now        int64 // unix nanos of the current event
	Start      int64 // unix nanos, request head parsed
	RouteID    string
	RouteName  string // the route's name, or ""
	// MatchedURI is the route's uri pattern that matched ("/v1/*").
	MatchedURI string
	// Body is the complete request body when a plugin asked for it
	// (NeedsBody) and it fits MaxPeekBody; nil otherwise.
	Body []byte
	// Match is router's view of the request (*router.Request) for Cond.Eval.
	Match any

	// Set by plugins for the proxy step.
	// Upstream is the upstream chosen for this request (traffic-split);
	// nil means the route's.
	Upstream *balancer.Upstream
	// Arm is the split arm chosen (traffic-split): rule and arm index and
	// labels; nil when no split happened.
	Arm *Arm
	// URI replaces the request path sent upstream (the query is kept unless
	// Query is set). It must point to compiled or scratch bytes.
	URI []byte
	// URIBuilt says URI holds request values (variables, regex captures):
	// the engine refuses it when they make a "." or ".." segment. A literal
	// URI (validated when configured) goes upstream as written.
	URIBuilt bool
	Query    []byte // replaces the query when non-nil (without '?')
	// Method replaces the request method sent upstream.
	Method []byte
	// Host replaces the Host header sent upstream.
	Host []byte
	// HeaderOps edits the request headers sent upstream, in order.
	HeaderOps []HeaderOp
	// Consumer is the authenticated consumer's username ("" = none).
	Consumer string
	// Scratch is per-request space plugins may append to (URI building).
	Scratch []byte

	// Response side, set by the engine.
	Resp           *http1.Response // upstream response head (HeaderFilter only)
	Status         int             // status sent to the client (0: none)
	Aborted        bool            // the response started but was cut (upstream closed, timed out or broke framing mid-body)
	UpstreamStatus int             // upstream's status; 502/504 when an attempt failed or timed out, as nginx's $upstream_status (0: none tried)
	Node           int             // node index in the upstream, -1 none
	Addr           netip.AddrPort  // upstream address used
	UpstreamStart  int64           // unix nanos, the serving upstream attempt began: connect, TLS and sending included, as nginx's $upstream_response_time (0: nothing sent)
	FirstByte      int64           // unix nanos, first body byte of a 2xx upstream response (0: none)
	End            int64           // unix nanos, request ended
	BytesIn        int64           // request bytes received (head + body)
	BytesOut       int64           // response bytes sent to the client
	// PromptTokens and CompletionTokens are the LLM usage the response
	// reported ("usage" in a JSON body or the last SSE event); set by the
	// engine when a plugin of the chain implements UsageReader; -1 unknown.
	PromptTokens     int64
	CompletionTokens int64

	respHeaders []byte // extra response head lines ("Name: value\r\n")
	step        int    // index of the next pre-proxy step (Defer resumes here)
	deferFn     func(c *Ctx, fn func() Result)
}

// HeaderOp is one request-header edit.
type HeaderOp struct {
	Kind  uint8 // HeaderSet, HeaderAdd, HeaderRemove
	Name  []byte
	Value []byte
}

// EditedHeader reports whether an earlier plugin set or removed the
// request header an nginx variable suffix names ($http_apikey after
// key-auth's hide_credentials), and its value then (nil when removed).
// APISIX clears its cached variable on such an edit, so later readers see
// the edit, not the client's value. An add leaves the first value as is.
func (c *Ctx) EditedHeader(varName []byte) (value []byte, edited bool) {
	for i := len(c.HeaderOps) - 1; i >= 0; i-- {
		op := &c.HeaderOps[i]
		if op.Kind == HeaderAdd || !http1.VarNameEq(op.Name, varName) {
			continue
		}
		if op.Kind == HeaderRemove {
			return nil, true
		}
		return op.Value, true
	}
	return nil, false
}

// Header edit kinds.
const (
	HeaderSet uint8 = iota + 1
	HeaderAdd
	HeaderRemove
)

// ArmLister is implemented by an Instance that keeps metric series per
// split arm (traffic-split): the router lists a table's arms so the series
// of an arm removed from a live route leave the metrics endpoint.
type ArmLister interface{ Arms() []Arm }

// Arm describes a traffic-split choice for logs and metrics.
type Arm struct {
	Rule  int    // rule index in the configuration
	Index int    // arm index within the rule
	Label string // "rule/arm" label value, e.g. "0/1"
	// Name labels the arm in metrics: its upstream id, inline upstream
	// name, or "route" for the route's own upstream.
	Name string
	// Weight is the arm's configured weight (ArmLister's lists only).
	Weight int
}

// Reset clears c for the next request, keeping capacities.
func (c *Ctx) Reset() {
	ops, scratch, rh, d := c.HeaderOps[:0], c.Scratch[:0], c.respHeaders[:0], c.deferFn
	*c = Ctx{HeaderOps: ops, Scratch: scratch, respHeaders: rh, deferFn: d, Node: -1}
}

// AddRespHeaderInt appends "name: v" to the response the client gets
// (upstream response or an early Result), without allocating.
func (c *Ctx) AddRespHeaderInt(name []byte, v int64) {
	c.respHeaders = append(c.respHeaders, name...)
	c.respHeaders = append(c.respHeaders, ": "...)
	c.respHeaders = strconv.AppendInt(c.respHeaders, v, 10)
	c.respHeaders = append(c.respHeaders, "\r\n"...)
}

// AddRespHeaderLines appends raw "Name: value\r\n" lines to the response
// the client gets.
func (c *Ctx) AddRespHeaderLines(b []byte) { c.respHeaders = append(c.respHeaders, b...) }

// SetRespHeaderInt is AddRespHeaderInt replacing the line of the same
// name an earlier plugin added, as APISIX's set_header: limit-count in a
// global rule and on the route sends one set of X-RateLimit-* headers.
func (c *Ctx) SetRespHeaderInt(name []byte, v int64) {
	c.dropRespHeader(name)
	c.AddRespHeaderInt(name, v)
}

// SetRespHeaderLines is AddRespHeaderLines replacing the lines of the
// same names added before.
func (c *Ctx) SetRespHeaderLines(b []byte) {
	for rest := b; len(rest) > 0; {
		line := rest
		if i := bytes.Index(rest, crlfBytes); i >= 0 {
			line, rest = rest[:i], rest[i+2:]
		} else {
			rest = nil
		}
		if j := bytes.IndexByte(line, ':'); j > 0 {
			c.dropRespHeader(line[:j])
		}
	}
	c.AddRespHeaderLines(b)
}

var crlfBytes = []byte("\r\n")

// dropRespHeader removes the added lines named name (ASCII
// case-insensitive), in place.
func (c *Ctx) dropRespHeader(name []byte) {
	h, w := c.respHeaders, 0
	for r := 0; r < len(h); {
		end := len(h)
		if i := bytes.Index(h[r:], crlfBytes); i >= 0 {
			end = r + i + 2
		}
		line := h[r:end]
		r = end
		if len(line) > len(name) && line[len(name)] == ':' && bytes.EqualFold(line[:len(name)], name) {
			continue
		}
		w += copy(h[w:], line)
	}
	c.respHeaders = h[:w]
}

// RespHeaders returns the extra response head lines plugins added.
func (c *Ctx) RespHeaders() []byte { return c.respHeaders }

// SetDefer installs the engine's continuation hook (engine use only).
func (c *Ctx) SetDefer(fn func(c *Ctx, work func() Result)) { c.deferFn = fn }

// Step and SetStep expose the chain position (engine use only).
func (c *Ctx) Step() int     { return c.step }
func (c *Ctx) SetStep(i int) { c.step = i }

// Defer hands work to a goroutine: a phase that must wait (Redis) returns
// c.Defer(work). work runs off the loop and must not touch c; the engine
// continues the chain on the request's loop with work's Result (a zero
// status goes on to the next step, adding the Result's Headers to the
// response). A request whose client went away in
// the meantime is dropped.
func (c *Ctx) Defer(work func() Result) Result {
	c.deferFn(c, work)
	return Result{Status: pendingStatus}
}
