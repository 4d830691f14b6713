package limitcount

import (
	"encoding/json"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/engine/http1"
	"github.com/sluice-gw/sluice/plugin"
)

// t0 is a fixed clock start (unix nanos) for tests that move c.Now.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

func env(routeID string) *plugin.Env {
	return &plugin.Env{RouteID: routeID, Scope: "route " + routeID, Loops: 8}
}

// compile compiles conf for route routeID and fails the test on error.
func compile(t testing.TB, routeID, conf string) *instance {
	t.Helper()
	inst, err := limitCount{}.Compile(json.RawMessage(conf), env(routeID))
	require.NoError(t, err, conf)
	return inst.(*instance)
}

// request parses a raw request head into a Ctx from client addr.
func request(t testing.TB, raw, addr string) *plugin.Ctx {
	t.Helper()
	var req http1.Request
	_, err := http1.ParseRequest(&req, []byte(raw), nil)
	require.NoError(t, err)
	c := &plugin.Ctx{}
	c.Reset()
	c.Req = &req
	c.RemoteAddr = netip.MustParseAddr(addr)
	c.Now = t0
	c.RouteID = "r1"
	return c
}

const get = "GET /hello?user=ann&empty= HTTP/1.1\r\nHost: example.com:8080\r\nX-User: bob\r\nCookie: a=1; sid=xyz\r\n\r\n"

// headers returns the response headers plugins added, by name.
func headers(c *plugin.Ctx) map[string]string {
	return parseHeaders(c.RespHeaders())
}

func parseHeaders(b []byte) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(string(b), "\r\n") {
		if k, v, ok := strings.Cut(l, ": "); ok {
			out[k] = v
		}
	}
	return out
}

// do runs Access on a fresh copy of c's request state and returns the
// status (0 admitted) and the quota headers.
func do(in *instance, c *plugin.Ctx) (int, map[string]string, plugin.Result) {
	req, addr, now, loop, cons := c.Req, c.RemoteAddr, c.Now, c.Loop, c.Consumer
	c.Reset()
	c.Req, c.RemoteAddr, c.Now, c.Loop, c.Consumer, c.RouteID = req, addr, now, loop, cons, "r1"
	res := in.Access(c)
	return res.Status, headers(c), res
}

func TestLocalSequence(t *testing.T) {
	in := compile(t, t.Name(), `{"count":3,"time_window":60}`)
	c := request(t, get, "10.0.0.1")
	for i, want := range []string{"2", "1", "0"} {
		st, h, _ := do(in, c)
		assert.Equal(t, 0, st, "request %d admitted", i+1)
		assert.Equal(t, map[string]string{"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": want, "X-RateLimit-Reset": "60"}, h)
	}
	st, h, res := do(in, c)
	assert.Equal(t, 503, st, "APISIX's default rejected_code")
	assert.Nil(t, res.Body, "no rejected_msg: the engine writes the default body")
	assert.Equal(t, map[string]string{"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "60"}, h)

	// Reset counts down with the clock (whole seconds, rounded up).
	c.Now = t0 + int64(10*time.Second) + 1
	st, h, _ = do(in, c)
	assert.Equal(t, 503, st)
	assert.Equal(t, "50", h["X-RateLimit-Reset"])

	// Another client has its own counter.
	c2 := request(t, get, "10.0.0.2")
	st, h, _ = do(in, c2)
	assert.Equal(t, 0, st)
	assert.Equal(t, "2", h["X-RateLimit-Remaining"])
}

func TestLocalWindowReset(t *testing.T) {
	in := compile(t, t.Name(), `{"count":2,"time_window":60}`)
	c := request(t, get, "10.0.0.1")
	for range 2 {
		st, _, _ := do(in, c)
		require.Equal(t, 0, st)
	}
	c.Now = t0 + int64(59*time.Second)
	st, h, _ := do(in, c)
	assert.Equal(t, 503, st, "still the first window")
	assert.Equal(t, "1", h["X-RateLimit-Reset"])

	c.Now = t0 + int64(60*time.Second) // the window started at t0 ends here
	st, h, _ = do(in, c)
	assert.Equal(t, 0, st, "new window")
	assert.Equal(t, map[string]string{"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "60"}, h)
	st, _, _ = do(in, c)
	assert.Equal(t, 0, st)
	st, _, _ = do(in, c)
	assert.Equal(t, 503, st)
}

func TestLocalRejectedMsgAndCode(t *testing.T) {
	in := compile(t, t.Name(), `{"count":1,"time_window":60,"rejected_code":429,"rejected_msg":"too many <requests> \"now\""}`)
	c := request(t, get, "10.0.0.1")
	st, _, _ := do(in, c)
	require.Equal(t, 0, st)
	st, h, res := do(in, c)
	assert.Equal(t, 429, st)
	assert.Equal(t, `{"error_msg":"too many <requests> \"now\""}`+"\n", string(res.Body))
	assert.Equal(t, "Content-Type: application/json\r\n", string(res.Headers))
	assert.Equal(t, "0", h["X-RateLimit-Remaining"])
}

func TestLocalNoQuotaHeaders(t *testing.T) {
	in := compile(t, t.Name(), `{"count":1,"time_window":60,"show_limit_quota_header":false}`)
	c := request(t, get, "10.0.0.1")
	st, h, _ := do(in, c)
	assert.Equal(t, 0, st)
	assert.Empty(t, h)
	st, h, _ = do(in, c)
	assert.Equal(t, 503, st)
	assert.Empty(t, h)
}

// keyOf returns the key value in compiles for c.
func keyOf(t *testing.T, keyType, key string, c *plugin.Ctx) string {
	t.Helper()
	conf := `{"count":1,"time_window":1,"key_type":` + strconv.Quote(keyType) + `,"key":` + strconv.Quote(key) + `}`
	inst, err := limitCount{}.Compile(json.RawMessage(conf), &plugin.Env{RouteID: "r1", ServiceID: "s1", Scope: "route r1"})
	require.NoError(t, err, conf)
	return string(inst.(*instance).key.appendKey(nil, c))
}

func TestKeys(t *testing.T) {
	c := request(t, get, "10.0.0.7")
	c.Consumer = "jack"
	f := func(keyType, key, want string) {
		t.Helper()
		assert.Equal(t, want, keyOf(t, keyType, key, c), keyType+" "+key)
	}
	f("var", "remote_addr", "10.0.0.7")
	f("var", "$remote_addr", "10.0.0.7")
	f("var", "http_x_user", "bob")
	f("var", "http_X_USER", "bob")
	f("var", "http_x_missing", "10.0.0.7") // empty: client address
	f("var", "arg_user", "ann")
	f("var", "arg_missing", "10.0.0.7")
	f("var", "cookie_sid", "xyz")
	f("var", "consumer_name", "jack")
	f("var", "route_id", "r1")
	f("var", "service_id", "s1")
	f("var", "host", "example.com")
	f("constant", "all", "all")
	f("var_combination", "$remote_addr $http_x_user", "10.0.0.7 bob")
	f("var_combination", "${http_x_user}-${arg_user}", "bob-ann")
	f("var_combination", `u:\$$http_x_user`, `u:\$bob`) // APISIX keeps the backslash
	f("var_combination", "${http_x_missing ?? anon}:$request_method", "anon:GET")
	f("var_combination", "$remote_addr $", "10.0.0.7 $")
	f("var_combination", "$http_x_missing:$arg_user", ":ann") // one resolved: kept
	f("var_combination", "$http_x_missing:$arg_nope", "10.0.0.7")
	f("var_combination", "${arg_empty ?? d}|${http_x_missing ?? d}", "|d") // present but empty: no default
	f("var_combination", "plain", "plain")

	c.RemoteAddr = netip.MustParseAddr("::ffff:10.0.0.8")
	f("var", "remote_addr", "10.0.0.8")
	c.RemoteAddr = netip.MustParseAddr("2001:db8::1")
	f("var", "remote_addr", "2001:db8::1")
	c.Consumer = ""
	f("var", "consumer_name", "2001:db8::1")
}

func TestKeyTypeCounts(t *testing.T) {
	// A header key counts per header value, whatever the client address.
	in := compile(t, t.Name(), `{"count":1,"time_window":60,"key":"http_x_user"}`)
	st, _, _ := do(in, request(t, get, "10.0.0.1"))
	assert.Equal(t, 0, st)
	st, _, _ = do(in, request(t, get, "10.0.0.2"))
	assert.Equal(t, 503, st, "same X-User from another address")
	st, _, _ = do(in, request(t, strings.Replace(get, "bob", "eve", 1), "10.0.0.2"))
	assert.Equal(t, 0, st, "another X-User")

	// constant: one counter for everybody.
	in = compile(t, t.Name()+"c", `{"count":1,"time_window":60,"key_type":"constant","key":"k"}`)
	st, _, _ = do(in, request(t, get, "10.0.0.1"))
	assert.Equal(t, 0, st)
	st, _, _ = do(in, request(t, get, "10.0.0.2"))
	assert.Equal(t, 503, st)
}

func TestCompileErrors(t *testing.T) {
	f := func(conf, want string) {
		t.Helper()
		_, err := limitCount{}.Compile(json.RawMessage(conf), env("r"))
		require.Error(t, err, conf)
		assert.Contains(t, err.Error(), "failed to check the configuration of plugin limit-count err: ")
		assert.Contains(t, err.Error(), want, conf)
	}
	f(`{"time_window":60}`, `property "count" is required`)
	f(`{"count":3}`, `property "time_window" is required`)
	f(`{"count":0,"time_window":60}`, `property "count" validation failed: expected 0 to be greater than 0`)
	f(`{"count":1.5,"time_window":60}`, `property "count" validation failed: wrong type: expected integer`)
	f(`{"count":"$http_n","time_window":60}`, `property "count" validation failed: a variable count is not supported`)
	f(`{"count":3,"time_window":-1}`, `property "time_window" validation failed: expected -1 to be greater than 0`)
	f(`{"count":3,"time_window":60,"rejected_code":600}`, `property "rejected_code" validation failed: expected 600 to be at most 599`)
	f(`{"count":3,"time_window":60,"rejected_code":199}`, `property "rejected_code" validation failed: expected 199 to be at least 200`)
	f(`{"count":3,"time_window":60,"rejected_msg":""}`, `property "rejected_msg" validation failed: string too short`)
	f(`{"count":3,"time_window":60,"key_type":"ip"}`, `property "key_type" validation failed: matches none of the enum values`)
	f(`{"count":3,"time_window":60,"policy":"memcached"}`, `property "policy" validation failed: matches none of the enum values`)
	f(`{"count":3,"time_window":60,"policy":"redis-cluster"}`, `"redis-cluster" is not supported by sluice`)
	f(`{"count":3,"time_window":60,"policy":"redis-sentinel"}`, `"redis-sentinel" is not supported by sluice`)
	f(`{"count":3,"time_window":60,"policy":"redis"}`, `property "redis_host" is required`)
	f(`{"count":3,"time_window":60,"policy":"redis","redis_host":"localhost","redis_port":70000}`, `property "redis_port" validation failed`)
	f(`{"count":3,"time_window":60,"policy":"redis","redis_host":"localhost","redis_ssl":true}`, `property "redis_ssl" is not supported`)
	f(`{"count":3,"time_window":60,"window_type":"sliding"}`, `property "window_type" validation failed: sluice supports only "fixed"`)
	f(`{"rules":[{"count":1,"time_window":1,"key":"k"}]}`, `property "rules" is not supported by sluice`)
	f(`{"count":1,"time_window":1,"rules":[]}`, `matches both "count" and "rules"`)
	f(`{"count":3,"time_window":60,"sync_interval":1}`, `property "sync_interval" is not supported`)
	f(`{"count":3,"time_window":60,"allow_degradation":"yes"}`, `property "allow_degradation" validation failed: wrong type: expected boolean, got string`)
	f(`{"count":3,"time_window":60,"key":"server_addr"}`, `variable "server_addr" is not supported by sluice`)
	f(`{"count":3,"time_window":60,"key_type":"var_combination","key":"$remote_addr $post_arg.model"}`, `variable "post_arg.model" is not supported`)
	f(`{"count":3,"time_window":60,"key_type":"var_combination","key":"$http_x_user.v1"}`, `variable "http_x_user.v1" is not supported`)
	f(`[1]`, `invalid JSON`)

	// Accepted: APISIX's fixed window, a null field, an unknown field.
	for _, ok := range []string{
		`{"count":3,"time_window":60,"window_type":"fixed"}`,
		`{"count":3.0,"time_window":60,"rejected_msg":null,"_meta":{"priority":1}}`,
		`{"count":3,"time_window":60,"policy":"redis","redis_host":"127.0.0.1","redis_password":"","redis_database":1,"redis_timeout":50}`,
	} {
		_, err := limitCount{}.Compile(json.RawMessage(ok), env("r"))
		assert.NoError(t, err, ok)
	}
}

// TestLocalExactAcrossLoops hammers one key from several event loops at
// once: exactly count requests are admitted, also when they all race to
// start a new window.
func TestLocalExactAcrossLoops(t *testing.T) {
	const loops, per, count = 8, 2000, 3001
	in := compile(t, t.Name(), `{"count":`+strconv.Itoa(count)+`,"time_window":60}`)
	run := func(now int64) int64 {
		var admitted atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for l := range loops {
			c := request(t, get, "10.0.0.1")
			c.Loop, c.Now = l, now
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for range per {
					if st, _, _ := do(in, c); st == 0 {
						admitted.Add(1)
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		return admitted.Load()
	}
	assert.Equal(t, int64(count), run(t0), "first window")
	assert.Equal(t, int64(count), run(t0+int64(60*time.Second)), "every loop races to start the second window")
	assert.Equal(t, int64(0), run(t0+int64(119*time.Second)), "still the second window")
}

// TestStateSurvivesRebuild: a new table compiled from the same
// configuration keeps the counters; a changed count starts afresh.
func TestStateSurvivesRebuild(t *testing.T) {
	c := request(t, get, "10.0.0.1")
	a := compile(t, t.Name(), `{"count":2,"time_window":60}`)
	st, _, _ := do(a, c)
	require.Equal(t, 0, st)

	b := compile(t, t.Name(), `{"time_window":60, "count":2, "rejected_msg":"slow down"}`)
	st, h, _ := do(b, c)
	assert.Equal(t, 0, st)
	assert.Equal(t, "0", h["X-RateLimit-Remaining"], "same counter after the rebuild")
	st, _, _ = do(b, c)
	assert.Equal(t, 503, st)

	d := compile(t, t.Name(), `{"count":5,"time_window":60}`)
	st, h, _ = do(d, c)
	assert.Equal(t, 0, st)
	assert.Equal(t, "4", h["X-RateLimit-Remaining"], "changed count: new counter")

	other := compile(t, t.Name()+"-other", `{"count":2,"time_window":60}`)
	st, h, _ = do(other, c)
	assert.Equal(t, 0, st)
	assert.Equal(t, "1", h["X-RateLimit-Remaining"], "counters are per route")
	runtime.KeepAlive(a)
}

func TestGroupSharedAcrossRoutes(t *testing.T) {
	c := request(t, get, "10.0.0.1")
	g := `{"count":2,"time_window":60,"group":"` + t.Name() + `"}`
	a, b := compile(t, "ga", g), compile(t, "gb", g)
	st, _, _ := do(a, c)
	require.Equal(t, 0, st)
	st, _, _ = do(b, c)
	require.Equal(t, 0, st)
	st, _, _ = do(a, c)
	assert.Equal(t, 503, st, "the group's two routes share one counter")
}

// TestGroupConfMismatched: the routes of one group share its counter, so
// within one build they must configure it the same (APISIX refuses the
// write with "group conf mismatched"); another group is independent.
func TestGroupConfMismatched(t *testing.T) {
	shared := map[string]any{}
	compileIn := func(routeID, conf string) error {
		e := env(routeID)
		e.Shared = shared
		_, err := limitCount{}.Compile(json.RawMessage(conf), e)
		return err
	}
	g := `"group":"` + t.Name() + `"`
	require.NoError(t, compileIn("a", `{"count":2,"time_window":60,`+g+`}`))
	require.NoError(t, compileIn("b", `{"count":2,"time_window":60,`+g+`}`))
	err := compileIn("c", `{"count":3,"time_window":60,`+g+`}`)
	require.Error(t, err)
	assert.Equal(t, "failed to check the configuration of plugin limit-count err: group conf mismatched", err.Error())
	require.NoError(t, compileIn("d", `{"count":3,"time_window":60,"group":"`+t.Name()+`-other"}`))
}

func TestSweep(t *testing.T) {
	in := compile(t, t.Name(), `{"count":1,"time_window":10}`)
	for i := range 50 {
		c := request(t, get, "10.1.0."+strconv.Itoa(i))
		st, _, _ := do(in, c)
		require.Equal(t, 0, st)
	}
	require.Equal(t, 50, in.local.size())
	sweepAll(t0 + int64(9*time.Second))
	assert.Equal(t, 50, in.local.size(), "windows still running are kept")
	sweepAll(t0 + int64(10*time.Second))
	assert.Equal(t, 0, in.local.size(), "ended windows are dropped")

	c := request(t, get, "10.1.0.1")
	c.Now = t0 + int64(11*time.Second)
	st, h, _ := do(in, c)
	assert.Equal(t, 0, st)
	assert.Equal(t, "0", h["X-RateLimit-Remaining"])

	// A limiter no instance uses any more is dropped from the store.
	key := in.stateKey
	in = nil
	require.Eventually(t, func() bool {
		runtime.GC()
		sweepAll(t0)
		_, ok := limiters.Load(key)
		return !ok
	}, 5*time.Second, 10*time.Millisecond)
}

// TestSweepRace runs the sweeper while loops count across window ends: no
// request is lost or double-admitted within an epoch (the count in each
// window never exceeds count).
func TestSweepRace(t *testing.T) {
	in := compile(t, t.Name(), `{"count":5,"time_window":1}`)
	var clock atomic.Int64
	clock.Store(t0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				sweepAll(clock.Load())
			}
		}
	}()
	var admitted [50]atomic.Int64 // per second of the clock
	var lwg sync.WaitGroup
	for l := range 4 {
		lwg.Add(1)
		go func() {
			defer lwg.Done()
			c := request(t, get, "10.0.0.1")
			c.Loop = l
			for range 4000 {
				now := clock.Add(int64(time.Millisecond) / 2)
				c.Now = now
				if st, _, _ := do(in, c); st == 0 {
					admitted[(now-t0)/int64(time.Second)].Add(1)
				}
			}
		}()
	}
	lwg.Wait()
	close(stop)
	wg.Wait()
	// Windows start at a key's first request, so one clock second may
	// overlap two windows: at most 2*count per second.
	total := int64(0)
	for i := range admitted {
		n := admitted[i].Load()
		assert.LessOrEqual(t, n, int64(10), "second %d", i)
		total += n
	}
	assert.Positive(t, total)
}

func TestResetSeconds(t *testing.T) {
	assert.Equal(t, int64(0), resetSeconds(0))
	assert.Equal(t, int64(0), resetSeconds(-5))
	assert.Equal(t, int64(1), resetSeconds(1))
	assert.Equal(t, int64(1), resetSeconds(int64(time.Second)))
	assert.Equal(t, int64(2), resetSeconds(int64(time.Second)+1))
}

func TestRegistered(t *testing.T) {
	p, ok := plugin.Lookup("limit-count")
	require.True(t, ok)
	assert.Equal(t, 1002, p.Priority())
}
