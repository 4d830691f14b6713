package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/admin/store"
	"github.com/sluice-gw/sluice/conf"
	"github.com/sluice-gw/sluice/engine/http1"
	"github.com/sluice-gw/sluice/router"

	"github.com/sluice-gw/sluice/internal/proctest"
)

// Test keys (43 characters, as conf.GenerateKey makes).
const (
	testAdminKey  = "k3y-for-tests-0123456789abcdefghijklmnopqrs"
	testViewerKey = "v1ewer-for-tests-0123456789abcdefghijklmnop"
)

// memStore is an in-memory store.Store with revisions, Watch and failure
// injection (fail makes writes return it).
type memStore struct {
	mu       sync.Mutex
	rev      int64
	items    map[string]store.KV
	watchers []*memWatcher
	fail     error
	failRead error
}

func newMemStore() *memStore { return &memStore{items: map[string]store.KV{}} }

func (m *memStore) Prefix() string { return "/apisix" }

func (m *memStore) Get(ctx context.Context, key string) (store.KV, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failRead != nil {
		return store.KV{}, false, m.failRead
	}
	kv, ok := m.items[key]
	return kv, ok, nil
}

func (m *memStore) List(ctx context.Context, prefix string) ([]store.KV, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failRead != nil {
		return nil, m.failRead
	}
	var out []store.KV
	for k, kv := range m.items {
		if strings.HasPrefix(k, prefix) {
			out = append(out, kv)
		}
	}
	slices.SortFunc(out, func(a, b store.KV) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// emit queues ev for every watcher without blocking (as the real stores
// do: a writer never waits for a watcher).
func (m *memStore) emit(ev store.Event) {
	for _, w := range m.watchers {
		w.push(ev)
	}
}

// memWatcher hands queued events to its channel in order.
type memWatcher struct {
	mu    sync.Mutex
	queue []store.Event
	wake  chan struct{}
	out   chan store.Event
}

func (w *memWatcher) push(ev store.Event) {
	w.mu.Lock()
	w.queue = append(w.queue, ev)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *memWatcher) run(ctx context.Context) {
	defer close(w.out)
	for {
		w.mu.Lock()
		if len(w.queue) == 0 {
			w.mu.Unlock()
			select {
			case <-w.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		ev := w.queue[0]
		w.queue = w.queue[1:]
		w.mu.Unlock()
		select {
		case w.out <- ev:
		case <-ctx.Done():
			return
		}
	}
}

func (m *memStore) Put(ctx context.Context, key string, value []byte) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return false, m.fail
	}
	m.rev++
	_, existed := m.items[key]
	kv := store.KV{Key: key, Value: append([]byte(nil), value...), Revision: m.rev}
	m.items[key] = kv
	m.emit(store.Event{Type: store.EventPut, KV: kv})
	return !existed, nil
}

func (m *memStore) Delete(ctx context.Context, key string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return false, m.fail
	}
	if _, ok := m.items[key]; !ok {
		return false, nil
	}
	m.rev++
	delete(m.items, key)
	m.emit(store.Event{Type: store.EventDelete, KV: store.KV{Key: key, Revision: m.rev}})
	return true, nil
}

// resync sends an EventResync to every watcher.
func (m *memStore) resync() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.emit(store.Event{Type: store.EventResync})
}

// putQuiet changes the store without any event (a change the watcher
// missed; resync must find it).
func (m *memStore) putQuiet(key, value string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rev++
	m.items[key] = store.KV{Key: key, Value: []byte(value), Revision: m.rev}
}

func (m *memStore) Watch(ctx context.Context) <-chan store.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := &memWatcher{wake: make(chan struct{}, 1), out: make(chan store.Event)}
	m.watchers = append(m.watchers, w)
	go w.run(ctx)
	return w.out
}

func (m *memStore) Close() error { return nil }

func (m *memStore) setFail(err error) {
	m.mu.Lock()
	m.fail = err
	m.mu.Unlock()
}

var _ store.Store = (*memStore)(nil)

// fakeResolver answers from a map; unknown names fail.
type fakeResolver struct {
	mu    sync.Mutex
	m     map[string][]string
	calls int
}

func newFakeResolver() *fakeResolver {
	return &fakeResolver{m: map[string][]string{
		"api.aimlapi.com": {"188.114.97.3", "188.114.96.3"},
		"localhost":       {"127.0.0.1"},
	}}
}

func (f *fakeResolver) set(host string, ips ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ips == nil {
		delete(f.m, host)
		return
	}
	f.m[host] = ips
}

func (f *fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	ips, ok := f.m[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	var out []netip.Addr
	for _, ip := range ips {
		out = append(out, netip.MustParseAddr(ip))
	}
	return out, nil
}

// testConfig is the default config with an admin and a viewer key.
func testConfig() *conf.Config {
	c := conf.Default()
	c.Deployment.Admin.AdminKey = []conf.AdminKey{
		{Name: "admin", Key: testAdminKey, Role: conf.KeyRoleAdmin},
		{Name: "viewer", Key: testViewerKey, Role: conf.KeyRoleViewer},
	}
	c.Deployment.Admin.AdminListen = conf.Addr{IP: "127.0.0.1", Port: 0}
	return c
}

// env is a Server under test with its store, publisher and resolver.
type env struct {
	t   testing.TB
	s   *Server
	st  store.Store
	mem *memStore // nil with the embedded store
	pub *router.Publisher
	dns *fakeResolver
	log *proctest.Buffer
}

type envOpt struct {
	cfg   *conf.Config
	store store.Store
	opts  []Option
}

// newEnv starts a Server (builder goroutine, no listener) over a memStore
// unless o.store is set.
func newEnv(t testing.TB, o envOpt) *env {
	t.Helper()
	if o.cfg == nil {
		o.cfg = testConfig()
	}
	e := &env{t: t, pub: &router.Publisher{}, dns: newFakeResolver(), log: &proctest.Buffer{}}
	if o.store == nil {
		e.mem = newMemStore()
		o.store = e.mem
	}
	e.st = o.store
	log := slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := &router.Builder{Resolver: e.dns}
	s, err := New(o.cfg, o.store, e.pub, b, log, append([]Option{WithVersion("test")}, o.opts...)...)
	require.NoError(t, err)
	require.NoError(t, s.StartBuilder())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		if t.Failed() {
			t.Logf("admin log:\n%s", e.log.String())
		}
	})
	e.s = s
	return e
}

// resp is a recorded response.
type resp struct {
	code int
	hdr  http.Header
	body string
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.body), &m), r.body)
	return m
}

// value returns body.value as a map.
func (r resp) value(t testing.TB) map[string]any {
	t.Helper()
	v, ok := r.json(t)["value"].(map[string]any)
	require.True(t, ok, r.body)
	return v
}

// do sends a request from 127.0.0.1 with the admin key (unless headers
// set X-API-KEY or "nokey" is given).
func (e *env) do(method, path, body string, headers ...string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	req.RemoteAddr = "127.0.0.1:40000"
	key := true
	for _, h := range headers {
		if h == "nokey" {
			key = false
			continue
		}
		k, v, _ := strings.Cut(h, ":")
		if strings.EqualFold(k, "X-API-KEY") {
			key = false
		}
		if k == "RemoteAddr" {
			req.RemoteAddr = strings.TrimSpace(v)
			continue
		}
		req.Header.Add(k, strings.TrimSpace(v))
	}
	if key {
		req.Header.Set("X-API-KEY", testAdminKey)
	}
	rec := httptest.NewRecorder()
	e.s.Handler().ServeHTTP(rec, req)
	return resp{code: rec.Code, hdr: rec.Header(), body: rec.Body.String()}
}

// doReader sends body with no Content-Length (as a chunked request).
func (e *env) doReader(method, path string, body io.Reader) resp {
	e.t.Helper()
	req := httptest.NewRequest(method, path, struct{ io.Reader }{body})
	req.ContentLength = -1
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("X-API-KEY", testAdminKey)
	rec := httptest.NewRecorder()
	e.s.Handler().ServeHTTP(rec, req)
	return resp{code: rec.Code, hdr: rec.Header(), body: rec.Body.String()}
}

// must sends a request and requires the status.
func (e *env) must(code int, method, path, body string, headers ...string) resp {
	e.t.Helper()
	r := e.do(method, path, body, headers...)
	require.Equal(e.t, code, r.code, "%s %s: %s", method, path, r.body)
	return r
}

// match returns the id of the route the current table matches for
// method/path ("" for none).
func (e *env) match(method, path string, headers ...string) string {
	e.t.Helper()
	return matchTable(e.t, e.pub.Load(), method, path, headers...)
}

func matchTable(t testing.TB, tbl *router.Table, method, path string, headers ...string) string {
	t.Helper()
	require.NotNil(t, tbl)
	if rt := tbl.Match(newRequest(t, method, path, headers...)); rt != nil {
		return rt.ID
	}
	return ""
}

// newRequest parses "method target HTTP/1.1" with header lines.
func newRequest(t testing.TB, method, target string, headers ...string) *router.Request {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", method, target)
	host := false
	for _, h := range headers {
		if strings.HasPrefix(strings.ToLower(h), "host:") {
			host = true
		}
		b.WriteString(h + "\r\n")
	}
	if !host {
		b.WriteString("Host: localhost\r\n")
	}
	b.WriteString("\r\n")
	req := &http1.Request{Headers: make([]http1.Header, 0, 32)}
	_, err := http1.ParseRequest(req, []byte(b.String()), &http1.Limits{})
	require.NoError(t, err)
	return &router.Request{Request: req, RemoteAddr: netip.MustParseAddr("127.0.0.1")}
}

// clock is a settable clock (Unix seconds) for WithClock.
type clock struct{ sec atomic.Int64 }

func newClock(sec int64) *clock {
	c := &clock{}
	c.sec.Store(sec)
	return c
}

func (c *clock) set(sec int64)  { c.sec.Store(sec) }
func (c *clock) now() time.Time { return time.Unix(c.sec.Load(), 0) }

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", d, what)
}

func splitHostPort(t testing.TB, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return h, n
}
