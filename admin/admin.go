// Package admin owns sluice's Admin API: APISIX's /apisix/admin/ endpoints
// on net/http (keys, roles, allow_admin CIDRs, validation, APISIX's item
// shapes and error texts) and the builder goroutine that turns the durable
// store into routing tables: store → router.Build → Publisher.Store.
//
// Goroutines. HTTP handlers run on net/http's goroutines; they authenticate,
// read the body and answer reads (GET) from the in-memory copy of the store
// under a read lock. Every write is handed to the one builder goroutine,
// which owns the router.Builder and the in-memory state: it validates the
// write against the current state (references, duplicate keys), builds the
// table the write would produce, makes the write durable in the store, then
// publishes that table and answers. A successful write is therefore visible
// to the data plane before its response is sent. The builder goroutine also
// applies the store's Watch events (writes made by other gateways sharing
// etcd), debounced, and rebuilds every 30 s when a node is a host name (DNS
// re-resolution).
//
// Where APISIX and SPEC §4 leave room, sluice chooses (for the README):
//
//   - A write is refused (400, the router's message naming the resource)
//     when the configuration it would produce does not build, e.g. a node
//     name that never resolved: the stored configuration always builds.
//     APISIX stores it and fails at request time.
//   - traffic-split arm upstream_ids must exist (400), as route ones do in
//     APISIX; deleting an upstream an arm uses is refused like a route's
//     ("plugin in route [1] is still using it now"). ?force=true is not
//     supported: a dangling reference would not build.
//   - Secrets: ssl key/keys are left out of responses (APISIX); consumer
//     plugin credentials (key, password, secret) and, anywhere, fields named
//     *password, *secret, secret_key, private_key, client_secret and
//     upstream tls client_key read "******". The store keeps the values.
//   - POST ids are 20 digits, zero-padded, as APISIX's, but from the clock
//     in microseconds (made strictly increasing), not an etcd revision.
//   - Consumers: PUT /consumers/{username} may leave username out of the
//     body; the stored value has no id (APISIX's consumer schema has none).
//   - A client outside allow_admin gets a JSON 403 (APISIX: nginx's HTML).
//   - No CORS headers (APISIX sends Access-Control-Allow-Origin: *).
//   - createdIndex/modifiedIndex are the store revisions this process saw;
//     createdIndex of an item loaded at start is its last revision.
//   - Routes of equal priority on the same path are tried in id order.
//   - A sub-path in the URL is only for PATCH; GET/PUT/DELETE with one → 404.
//   - List filters (name, label, uri, filter) are APISIX 3.x's, with RE2
//     patterns; what APISIX would answer with an empty list or ignore (a
//     pattern that does not compile, an unknown filter field) is a 400.
//   - ?ttl= on PUT, POST or PATCH is refused (400): keys never expire, and
//     a route meant to be temporary must not be stored as a lasting one.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/admin/store"
	"github.com/sluice-gw/sluice/conf"
	"github.com/sluice-gw/sluice/router"
)

// Limits and periods of the Admin API.
const (
	// maxBody is the largest request body (SPEC §4: larger → 413).
	maxBody = 1 << 20
	// debounce is how long the builder waits after a Watch event for more
	// before it rebuilds (bursts of changes from another gateway); a write
	// made through this server is published at once.
	debounce = 10 * time.Millisecond
	// dnsRefresh is how often tables whose nodes are host names are rebuilt
	// so that the names are resolved again.
	dnsRefresh = 30 * time.Second
	// pendingTTL bounds how long the builder waits for the Watch echo of its
	// own write before it stops treating events for that key as older.
	pendingTTL = 10 * time.Second
	// mask replaces secrets in responses (consumer plugin keys, passwords,
	// upstream TLS client keys).
	mask = "******"
)

// Option changes a Server at New.
type Option func(*Server)

// WithVersion sets the version in the Server header ("sluice/<version>").
func WithVersion(v string) Option { return func(s *Server) { s.version = v } }

// WithClock replaces time.Now for create_time, update_time and generated
// ids (tests).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithDNSRefresh changes the DNS re-resolution period (default 30 s; 0 or
// less turns it off).
func WithDNSRefresh(d time.Duration) Option { return func(s *Server) { s.dnsEvery = d } }

// Server is the Admin API and its builder goroutine.
type Server struct {
	cfg      *conf.Config
	st       store.Store
	pub      *router.Publisher
	b        *router.Builder
	res      *cachingResolver
	log      *slog.Logger
	version  string
	now      func() time.Time
	dnsEvery time.Duration
	opWait   time.Duration // store operation timeout

	allow    []netip.Prefix // nil: every address
	keys     []adminKey
	needKey  bool
	prefix   string // store prefix, "/apisix"
	listenAt string

	// mu guards state for readers (handlers); only the builder goroutine
	// (or Load, before it starts) changes state, under mu.Lock.
	mu    sync.RWMutex
	state *state

	ops     chan *writeReq
	ctx     context.Context // lifetime of the Server (Watch, builder)
	cancel  context.CancelFunc
	events  <-chan store.Event
	loaded  bool
	started bool
	done    chan struct{} // closed when the builder goroutine ends
	wg      sync.WaitGroup

	srv *http.Server
	ln  net.Listener

	// builder goroutine only
	pending map[string][]pendingWrite
	dirty   bool
	// broken: the stored items the published table could not build
	// (router.BuildIsolated), kept so a write is refused only for what
	// it breaks, never for what another writer left broken
	broken map[string]error
	lastID int64
}

type adminKey struct {
	name string
	role string
	sum  [32]byte // sha256 of the key: compared in constant time
}

// New returns an Admin API server for cfg.Deployment.Admin over st. It
// takes ownership of b (one goroutine must own a router.Builder): b's
// Resolver is wrapped with a cache that keeps the last good answer when a
// lookup fails, so that a DNS outage does not block writes. New does not
// touch the store or the network; Start (or Load) does.
func New(cfg *conf.Config, st store.Store, pub *router.Publisher, b *router.Builder, log *slog.Logger, opts ...Option) (*Server, error) {
	if cfg == nil || st == nil || pub == nil || b == nil {
		return nil, errors.New("admin: New needs a config, a store, a publisher and a builder")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ad := cfg.Deployment.Admin
	s := &Server{
		cfg:      cfg,
		st:       st,
		pub:      pub,
		b:        b,
		log:      log,
		version:  "dev",
		now:      time.Now,
		dnsEvery: dnsRefresh,
		opWait:   30 * time.Second,
		needKey:  ad.AdminKeyRequired,
		prefix:   st.Prefix(),
		listenAt: net.JoinHostPort(ad.AdminListen.IP, strconv.Itoa(ad.AdminListen.Port)),
		state:    newState(),
		ops:      make(chan *writeReq),
		done:     make(chan struct{}),
		pending:  map[string][]pendingWrite{},
	}
	if t := cfg.Deployment.Etcd.Timeout; t > 0 && cfg.Deployment.ConfigProvider == conf.ProviderEtcd {
		s.opWait = t
	}
	for _, o := range opts {
		o(s)
	}
	for _, c := range ad.AllowAdmin {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			a, aerr := netip.ParseAddr(c)
			if aerr != nil {
				return nil, fmt.Errorf("admin: deployment.admin.allow_admin: %q is not a CIDR or an IP address", c)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		s.allow = append(s.allow, p.Masked())
	}
	for _, k := range ad.AdminKey {
		if k.Key == "" {
			continue
		}
		role := k.Role
		if role == "" {
			role = conf.KeyRoleAdmin
		}
		s.keys = append(s.keys, adminKey{name: k.Name, role: role, sum: sum256(k.Key)})
	}
	s.res = newCachingResolver(b.Resolver, s.log)
	b.Resolver = s.res
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Handler returns the Admin API's http.Handler (Start serves it; tests
// may use it with httptest).
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Addr is the address the Admin API listens on once Start returned (the
// configured one before).
func (s *Server) Addr() string {
	if s.ln != nil {
		return s.ln.Addr().String()
	}
	return s.listenAt
}

// Load reads every resource from the store, builds the first table and
// publishes it; it starts watching the store first so that no change made
// meanwhile is lost. A stored item that does not decode, validate or build
// (another writer's, in a shared etcd) is logged and not served: a route
// of that kind, or one that references it, answers 503. A global rule of
// that kind is an error naming it: left out, it could remove
// authentication from every route.
// Load must be called once, before Start or StartBuilder (Start calls it
// when it was not).
func (s *Server) Load(ctx context.Context) error {
	if s.loaded {
		return errors.New("admin: Load called twice")
	}
	s.events = s.st.Watch(s.ctx)
	kvs, err := s.st.List(ctx, s.prefix+"/")
	if err != nil {
		return fmt.Errorf("admin: read the store: %w", err)
	}
	st := newState()
	for _, kv := range kvs {
		s.loadKV(st, kv)
	}
	// (neither a DNS outage nor one item another writer left dangling
	// may keep the gateway down)
	t, broken, err := s.build(st, nil, "start", nil)
	if err != nil {
		return fmt.Errorf("admin: the stored configuration does not build: %w", err)
	}
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
	s.noteBroken(broken, "start")
	s.pub.Store(t)
	s.loaded = true
	s.log.Info("admin: configuration loaded", "routes", len(st.items["routes"]), "upstreams", len(st.items["upstreams"]),
		"services", len(st.items["services"]), "generation", t.Generation)
	return nil
}

// StartBuilder starts the builder goroutine (after Load). Start calls it;
// tests that drive Handler directly call it themselves.
func (s *Server) StartBuilder() error {
	if !s.loaded {
		if err := s.Load(s.ctx); err != nil {
			return err
		}
	}
	if s.started {
		return nil
	}
	s.started = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(s.done)
		s.run()
	}()
	return nil
}

// Start loads the configuration (unless Load was called), starts the
// builder goroutine and serves the Admin API on
// deployment.admin.admin_listen. It returns once the listener is open.
func (s *Server) Start() error {
	if err := s.StartBuilder(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.listenAt)
	if err != nil {
		s.cancel()
		s.wg.Wait()
		return fmt.Errorf("admin: listen on %s: %w", s.listenAt, err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin: serve", "err", err)
		}
	}()
	s.log.Info("admin API listening", "addr", ln.Addr().String(), "key_required", s.needKey)
	return nil
}

// Shutdown stops accepting Admin API requests, waits (bounded by ctx) for
// those in flight, then stops the builder goroutine and the store watch.
// The last published table stays published. The store is not closed: it
// belongs to the caller.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	if s.srv != nil {
		err = s.srv.Shutdown(ctx)
	}
	s.cancel()
	s.wg.Wait()
	return err
}
