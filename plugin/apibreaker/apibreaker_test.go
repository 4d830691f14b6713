package apibreaker

import (
	"encoding/json"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/engine/http1"
	"github.com/sluice-gw/sluice/plugin"
)

// t0 is an arbitrary unix second the tests' clock starts at.
const t0 = int64(1_700_000_000)

// compile compiles conf in a scope named after the test, so tests do not
// share breakers.
func compile(t testing.TB, conf string) *breaker {
	t.Helper()
	inst, err := apiBreaker{}.Compile(json.RawMessage(conf), &plugin.Env{Scope: "test " + t.Name()})
	require.NoError(t, err)
	return inst.(*breaker)
}

// newCtx returns a Ctx for a request with the given host and target.
func newCtx(t testing.TB, host, target string) *plugin.Ctx {
	t.Helper()
	var r http1.Request
	buf := []byte("GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n")
	_, err := http1.ParseRequest(&r, buf, &http1.Limits{})
	require.NoError(t, err)
	return &plugin.Ctx{Req: &r, Now: t0 * 1e9}
}

// client drives a breaker as the engine would: access, then (if the
// breaker let the request through) the upstream's status in log.
type client struct {
	b *breaker
	c *plugin.Ctx
}

func (cl *client) at(sec float64) *client {
	cl.c.Now = t0*1e9 + int64(sec*1e9)
	return cl
}

// do runs one request whose upstream would answer status; it returns the
// status the client got.
func (cl *client) do(status int) int {
	cl.c.UpstreamStatus = 0
	if res := cl.b.Access(cl.c); res.Status != 0 {
		cl.b.Log(cl.c) // no upstream response: status 0
		return res.Status
	}
	cl.c.UpstreamStatus = status
	cl.b.Log(cl.c)
	return status
}

func TestPriorityAndName(t *testing.T) {
	p, ok := plugin.Lookup("api-breaker")
	require.True(t, ok)
	assert.Equal(t, 1005, p.Priority())
}

func TestTripsAfterFailures(t *testing.T) {
	cl := &client{b: compile(t, `{"break_response_code":502}`), c: newCtx(t, "gw", "/api_breaker")}
	assert.Equal(t, 200, cl.do(200)) // healthy with no breaker: nothing happens
	assert.Equal(t, 500, cl.do(500))
	assert.Equal(t, 500, cl.do(500))
	assert.Equal(t, 500, cl.do(500)) // third failure trips the breaker
	assert.Equal(t, 502, cl.do(500))
	assert.Equal(t, 502, cl.do(200))
}

// TestAPISIXTriggerBreaker is apisix t/plugin/api-breaker.t TEST 10:
// unhealthy [500, 503], failures 3.
func TestAPISIXTriggerBreaker(t *testing.T) {
	cl := &client{b: compile(t, `{"break_response_code":502,"unhealthy":{"http_statuses":[500,503],"failures":3},"healthy":{"http_statuses":[200,206],"successes":3}}`), c: newCtx(t, "127.0.0.1", "/api_breaker?code=500")}
	var got []int
	for _, s := range []int{200, 500, 503, 500, 500, 500} {
		got = append(got, cl.do(s))
	}
	assert.Equal(t, []int{200, 500, 503, 500, 502, 502}, got)
}

// TestAPISIXDefaultStatuses is TEST 15: only 500 is unhealthy by default.
func TestAPISIXDefaultStatuses(t *testing.T) {
	cl := &client{b: compile(t, `{"break_response_code":502,"unhealthy":{"failures":3},"healthy":{"successes":3}}`), c: newCtx(t, "127.0.0.1", "/api_breaker")}
	var got []int
	for _, s := range []int{200, 500, 503, 500, 500, 500} {
		got = append(got, cl.do(s))
	}
	assert.Equal(t, []int{200, 500, 503, 500, 500, 502}, got)
}

// TestAPISIXBackoff is TEST 19: failures 1, max_breaker_sec 10, one request
// a second for 20 s against an upstream answering 500: the breaker opens
// for 2, 4, 8 and then 10 (capped) seconds.
func TestAPISIXBackoff(t *testing.T) {
	cl := &client{b: compile(t, `{"break_response_code":502,"max_breaker_sec":10,"unhealthy":{"http_statuses":[500,503],"failures":1},"healthy":{"successes":3}}`), c: newCtx(t, "127.0.0.1", "/api_breaker")}
	counts := map[int]int{}
	var passed []int
	for i := range 20 {
		s := cl.at(float64(i) + 0.5).do(500)
		counts[s]++
		if s == 500 {
			passed = append(passed, i)
		}
	}
	assert.Equal(t, map[int]int{500: 4, 502: 16}, counts)
	// Open through last+2, last+4, last+8, last+10 (whole seconds).
	assert.Equal(t, []int{0, 3, 8, 17}, passed)
}

func TestBreakerSecDoubling(t *testing.T) {
	b := compile(t, `{"break_response_code":502,"max_breaker_sec":100,"unhealthy":{"failures":3}}`)
	f := func(count, want int64) {
		t.Helper()
		assert.Equal(t, want, b.breakerSec(count), "count %d", count)
	}
	f(3, 2)
	f(5, 2)
	f(6, 4)
	f(9, 8)
	f(12, 16)
	f(15, 32)
	f(18, 64)
	f(21, 100) // 128 capped at max_breaker_sec
	f(3*200, 100)
	f(1<<62, 100)
}

// TestDoublingWindows trips the breaker again each time it closes: the
// windows are 2, 4, 8 s … capped at max_breaker_sec, counted in whole
// seconds like ngx.time().
func TestDoublingWindows(t *testing.T) {
	cl := &client{b: compile(t, `{"break_response_code":503,"max_breaker_sec":20,"unhealthy":{"failures":2}}`), c: newCtx(t, "gw", "/x")}
	now := 0.0
	require.Equal(t, 500, cl.at(now).do(500))
	require.Equal(t, 500, cl.at(now).do(500)) // 2nd failure: trips at second 0
	for _, window := range []float64{2, 4, 8, 16, 20, 20} {
		// Open through the end of second now+window ...
		assert.Equal(t, 503, cl.at(now+0.1).do(500), "window %v", window)
		assert.Equal(t, 503, cl.at(now+window+0.9).do(500), "window %v", window)
		// ... and closed at the next second: failure 2k+1 passes and does
		// not trip; failure 2k+2 trips again with a doubled window.
		now += window + 1
		assert.Equal(t, 500, cl.at(now).do(500), "window %v", window)
		assert.Equal(t, 500, cl.at(now).do(500), "window %v", window)
	}
}

func TestSuccessesReset(t *testing.T) {
	// apisix TEST 11 and 12 in one breaker.
	cl := &client{b: compile(t, `{"break_response_code":502,"unhealthy":{"failures":3},"healthy":{"successes":3}}`), c: newCtx(t, "gw", "/r")}
	var got []int
	for _, s := range []int{500, 500, 200, 200, 200, 500, 500} {
		got = append(got, cl.do(s))
	}
	// three successes reset the count: the last two failures do not trip.
	assert.Equal(t, []int{500, 500, 200, 200, 200, 500, 500}, got)

	// a failure clears the healthy count: 500 (3rd since reset) trips.
	got = got[:0]
	for _, s := range []int{200, 200, 500, 500} {
		got = append(got, cl.do(s))
	}
	assert.Equal(t, []int{200, 200, 500, 502}, got)

	// While open, nothing reaches the upstream, so only a closed window
	// lets healthy statuses reset it.
	cl.at(3)
	got = got[:0]
	for _, s := range []int{200, 200, 200, 500, 500, 500} {
		got = append(got, cl.do(s))
	}
	assert.Equal(t, []int{200, 200, 200, 500, 500, 500}, got, "reset after 3 successes: three new failures needed")
	assert.Equal(t, 502, cl.do(200))

	st := cl.b.store.load(key(cl.c.Req))
	require.NotNil(t, st)
	cl.at(10)
	for range 3 {
		require.Equal(t, 200, cl.do(200))
	}
	assert.Zero(t, st.unhealthy.Load())
	assert.Zero(t, st.healthy.Load())
	assert.Zero(t, st.last.Load())
}

func TestUnknownStatusIgnored(t *testing.T) {
	cl := &client{b: compile(t, `{"break_response_code":502,"unhealthy":{"failures":2}}`), c: newCtx(t, "gw", "/r")}
	assert.Equal(t, 500, cl.do(500))
	assert.Equal(t, 302, cl.do(302)) // neither healthy nor unhealthy
	assert.Equal(t, 504, cl.do(504))
	assert.Equal(t, 500, cl.do(500))
	assert.Equal(t, 502, cl.do(500))
}

func TestZeroUpstreamStatusIgnored(t *testing.T) {
	b := compile(t, `{"break_response_code":502,"unhealthy":{"failures":1}}`)
	c := newCtx(t, "gw", "/r")
	// A gateway-made answer (502 connect refused, 504 timeout, 429 from a
	// limit) has no upstream status: nothing is counted or created.
	c.UpstreamStatus, c.Status = 0, 502
	b.Log(c)
	assert.Nil(t, b.store.load(key(c.Req)))
	assert.Zero(t, b.Access(c).Status)
	// With a healthy status and no breaker, nothing is created either.
	c.UpstreamStatus = 200
	b.Log(c)
	assert.Nil(t, b.store.load(key(c.Req)))
}

func TestKeyHostAndURI(t *testing.T) {
	b := compile(t, `{"break_response_code":502,"unhealthy":{"failures":1}}`)
	trip := newCtx(t, "API.example.com:8080", "/v1/chat?x=1")
	trip.UpstreamStatus = 500
	b.Log(trip)
	require.Equal(t, 502, b.Access(trip).Status)

	f := func(host, target string, open bool) {
		t.Helper()
		c := newCtx(t, host, target)
		if open {
			assert.Equal(t, 502, b.Access(c).Status, host+target)
		} else {
			assert.Zero(t, b.Access(c).Status, host+target)
		}
	}
	f("api.example.com", "/v1/chat", true)         // $host: lowercased, no port
	f("api.example.com:9", "/v1/chat?other", true) // $uri: no query
	f("api.example.com", "/v1/chat/", false)       // another URI
	f("other.example.com", "/v1/chat", false)      // another host
	f("[::1]:80", "/v1/chat", false)               // another host
	f(strings.Repeat("A", 100), "/v1/chat", false) // long hosts hash in pieces
	assert.Equal(t, key(newCtx(t, strings.Repeat("A", 100)+":1", "/p").Req), key(newCtx(t, strings.Repeat("a", 100), "/p").Req))
}

func TestRoutesDoNotShare(t *testing.T) {
	conf := json.RawMessage(`{"break_response_code":502,"unhealthy":{"failures":1}}`)
	i1, err := apiBreaker{}.Compile(conf, &plugin.Env{Scope: "route share-1", RouteID: "share-1"})
	require.NoError(t, err)
	i2, err := apiBreaker{}.Compile(conf, &plugin.Env{Scope: "route share-2", RouteID: "share-2"})
	require.NoError(t, err)
	b1, b2 := i1.(*breaker), i2.(*breaker)
	c := newCtx(t, "gw", "/same")
	c.UpstreamStatus = 500
	b1.Log(c)
	assert.Equal(t, 502, b1.Access(c).Status)
	assert.Zero(t, b2.Access(c).Status)
}

func TestStateSurvivesRebuild(t *testing.T) {
	conf := json.RawMessage(`{"break_response_code":502,"unhealthy":{"failures":1}}`)
	env := &plugin.Env{Scope: "route rebuild", RouteID: "rebuild"}
	i1, err := apiBreaker{}.Compile(conf, env)
	require.NoError(t, err)
	c := newCtx(t, "gw", "/r")
	c.UpstreamStatus = 500
	i1.(*breaker).Log(c)

	// The same configuration, written differently, keeps the breaker.
	i2, err := apiBreaker{}.Compile(json.RawMessage(`{ "unhealthy": {"failures": 1, "http_statuses": [500]}, "break_response_code": 502 }`), env)
	require.NoError(t, err)
	assert.Same(t, i1.(*breaker).store, i2.(*breaker).store)
	assert.Equal(t, 502, i2.(*breaker).Access(c).Status)

	// A changed configuration starts afresh.
	i3, err := apiBreaker{}.Compile(json.RawMessage(`{"break_response_code":503,"unhealthy":{"failures":1}}`), env)
	require.NoError(t, err)
	assert.NotSame(t, i1.(*breaker).store, i3.(*breaker).store)
	assert.Zero(t, i3.(*breaker).Access(c).Status)
	runtime.KeepAlive(i1)
}

// TestStoreDroppedWhenUnused: once no compiled instance holds a store, the
// registry forgets it, so configuration churn does not leak.
func TestStoreDroppedWhenUnused(t *testing.T) {
	id := "drop\x00" + t.Name()
	require.NotNil(t, storeFor(id, 300))
	_, ok := stores.Load(id)
	require.True(t, ok)
	for i := 0; i < 200; i++ {
		runtime.GC()
		if _, ok := stores.Load(id); !ok {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("store entry not dropped after its store was collected")
}

func TestBreakResponse(t *testing.T) {
	b := compile(t, `{"break_response_code":599}`)
	assert.Equal(t, plugin.Result{Status: 599, Body: []byte(`{"error_msg":"breaker is open"}` + "\n"), Headers: []byte("Content-Type: application/json\r\n")}, b.result)
	var v map[string]string
	require.NoError(t, json.Unmarshal(b.result.Body, &v))

	b = compile(t, `{"break_response_code":502,"break_response_body":"down","break_response_headers":[{"key":"X-Breaker","value":"open"}]}`)
	assert.Equal(t, "down", string(b.result.Body))
	assert.Equal(t, "X-Breaker: open\r\nContent-Type: text/plain; charset=utf-8\r\n", string(b.result.Headers))

	b = compile(t, `{"break_response_code":502,"break_response_body":"{}","break_response_headers":[{"key":"content-type","value":"application/json"}]}`)
	assert.Equal(t, "content-type: application/json\r\n", string(b.result.Headers))

	// APISIX adds the headers only together with a body.
	b = compile(t, `{"break_response_code":502,"break_response_headers":[{"key":"X-Breaker","value":"open"}]}`)
	assert.Equal(t, "Content-Type: application/json\r\n", string(b.result.Headers))
}

// Header values resolve variables as APISIX's resolve_var does
// ("$remote_addr", "${http_x_id ?? none}"); an unknown variable is
// refused, and so are the fields that frame the answer.
func TestBreakResponseHeaderVariables(t *testing.T) {
	b := compile(t, `{"break_response_code":503,"break_response_body":"down","unhealthy":{"failures":1},
		"break_response_headers":[{"key":"X-Client","value":"$remote_addr"},{"key":"X-Id","value":"${http_x_id ?? none}"}]}`)
	cl := &client{b: b, c: newCtx(t, "h", "/x")}
	cl.c.RemoteAddr = netip.MustParseAddr("192.0.2.7")
	require.Equal(t, 500, cl.at(0).do(500))
	res := b.Access(cl.c)
	require.Equal(t, 503, res.Status)
	assert.Equal(t, "X-Client: 192.0.2.7\r\nX-Id: none\r\nContent-Type: text/plain; charset=utf-8\r\n", string(res.Headers))
	// a value never ends its line, whatever a variable holds
	assert.Equal(t, "X-Ab", string(dropCtl([]byte("X-A\r\nb\x00"), 0)))

	for conf, want := range map[string]string{
		`{"break_response_code":503,"break_response_body":"x","break_response_headers":[{"key":"X-A","value":"$nope"}]}`:                 `variable "nope" is not supported`,
		`{"break_response_code":503,"break_response_body":"x","break_response_headers":[{"key":"Content-Length","value":"100"}]}`:        `header "Content-Length" cannot be set by sluice`,
		`{"break_response_code":503,"break_response_body":"x","break_response_headers":[{"key":"transfer-encoding","value":"chunked"}]}`: `cannot be set by sluice`,
	} {
		_, err := apiBreaker{}.Compile(json.RawMessage(conf), &plugin.Env{Scope: "test " + t.Name()})
		require.Error(t, err, conf)
		assert.Contains(t, err.Error(), want, conf)
	}
}

func TestStoreFull(t *testing.T) {
	b := compile(t, `{"break_response_code":502,"unhealthy":{"failures":1},"max_breaker_sec":5}`)
	s := b.store
	for i := range maxStates {
		require.NotNil(t, s.loadOrCreate(uint64(i), t0))
	}
	setLast := func(v int64) {
		s.m.Range(func(_ uint64, st *state) bool { st.last.Store(v); return true })
	}
	swept := func() {
		t.Helper()
		require.Eventually(t, func() bool { return !s.sweeping.Load() }, 5*time.Second, time.Millisecond)
	}
	setLast(t0) // every breaker tripped just now
	assert.Nil(t, s.loadOrCreate(1<<40, t0), "full: not tracked, an eviction pass starts")
	swept()
	assert.Equal(t, int64(maxStates), s.n.Load(), "open breakers stay")
	assert.NotNil(t, s.loadOrCreate(7, t0), "an existing breaker is still found")
	setLast(0)
	assert.Nil(t, s.loadOrCreate(1<<40, t0), "one eviction pass per second")
	swept()
	assert.Equal(t, int64(maxStates), s.n.Load())
	setLast(t0)
	// once their trips are older than max_breaker_sec they are evicted
	assert.Nil(t, s.loadOrCreate(1<<40, t0+6))
	swept()
	assert.Equal(t, int64(0), s.n.Load())
	assert.NotNil(t, s.loadOrCreate(1<<40, t0+6))
	assert.Equal(t, int64(1), s.n.Load())
	assert.Equal(t, s.m.Size(), int(s.n.Load()))
}

// TestConcurrentLoops: event loops share a breaker through atomics; with
// every loop counting failures the breaker ends up open.
func TestConcurrentLoops(t *testing.T) {
	b := compile(t, `{"break_response_code":502,"unhealthy":{"failures":5}}`)
	const loops, perLoop = 4, 100
	done := make(chan struct{})
	for range loops {
		go func() {
			defer func() { done <- struct{}{} }()
			c := newCtx(t, "gw", "/shared")
			for range perLoop {
				if b.Access(c).Status == 0 {
					c.UpstreamStatus = 500
				} else {
					c.UpstreamStatus = 0
				}
				b.Log(c)
			}
		}()
	}
	for range loops {
		<-done
	}
	c := newCtx(t, "gw", "/shared")
	assert.Equal(t, 502, b.Access(c).Status)
	assert.Equal(t, int64(1), b.store.n.Load())
}
