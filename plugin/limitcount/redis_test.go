package limitcount

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/internal/redistest"
	"github.com/sluice-gw/sluice/plugin"
)

func redisConf(addr string, extra string) string {
	host, port, _ := net.SplitHostPort(addr)
	return `{"count":3,"time_window":60,"policy":"redis","redis_host":"` + host + `","redis_port":` + port + extra + `}`
}

// deferred runs Access like the engine: it must defer, and the deferred
// work's Result is what the engine continues with.
func deferred(t *testing.T, in *instance, c *plugin.Ctx) plugin.Result {
	t.Helper()
	var work func() plugin.Result
	req, addr, now := c.Req, c.RemoteAddr, c.Now
	c.Reset()
	c.Req, c.RemoteAddr, c.Now, c.RouteID = req, addr, now, "r1"
	c.SetDefer(func(_ *plugin.Ctx, w func() plugin.Result) { work = w })
	res := in.Access(c)
	require.True(t, res.Pending(), "the redis policy defers")
	require.NotNil(t, work)
	assert.Empty(t, c.RespHeaders(), "headers come with the deferred Result")
	return work()
}

func TestRedisSequence(t *testing.T) {
	srv := redistest.Start(t)
	in := compile(t, t.Name(), redisConf(srv.Addr(), `,"rejected_msg":"slow down"`))
	c := request(t, get, "10.0.0.1")
	for _, want := range []string{"2", "1", "0"} {
		res := deferred(t, in, c)
		assert.Equal(t, 0, res.Status)
		assert.Nil(t, res.Body)
		assert.Equal(t, map[string]string{"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": want, "X-RateLimit-Reset": "60"}, parseHeaders(res.Headers))
	}
	res := deferred(t, in, c)
	assert.Equal(t, 503, res.Status)
	assert.Equal(t, `{"error_msg":"slow down"}`+"\n", string(res.Body))
	h := parseHeaders(res.Headers)
	assert.Equal(t, "0", h["X-RateLimit-Remaining"])
	assert.Equal(t, "3", h["X-RateLimit-Limit"])
	assert.Equal(t, "application/json", h["Content-Type"])

	// One Redis key per limit key, with the window as its TTL.
	key := "plugin-limit-count:" + in.stateKey + ":10.0.0.1"
	v, err := srv.Do("INCRBY", key, "0") // an integer reply fits the one line Do returns
	require.NoError(t, err)
	assert.Equal(t, ":4", v, "three admitted and one refused request counted once each")
	ttl, err := srv.Do("PTTL", key)
	require.NoError(t, err)
	ms, err := strconv.Atoi(strings.TrimPrefix(ttl, ":"))
	require.NoError(t, err)
	assert.True(t, ms > 0 && ms <= 60000, "pttl %d", ms)

	// The window ends when the key expires: a new one starts.
	_, err = srv.Do("DEL", key)
	require.NoError(t, err)
	res = deferred(t, in, c)
	assert.Equal(t, 0, res.Status)
	assert.Equal(t, "2", parseHeaders(res.Headers)["X-RateLimit-Remaining"])

	// Another client has its own key.
	res = deferred(t, in, request(t, get, "10.0.0.2"))
	assert.Equal(t, 0, res.Status)
	assert.Equal(t, "2", parseHeaders(res.Headers)["X-RateLimit-Remaining"])
}

// TestRedisSharedByGateways: two compiled instances (two gateways, with
// their own connection settings) count against one Redis key.
func TestRedisSharedByGateways(t *testing.T) {
	srv := redistest.Start(t)
	a := compile(t, t.Name(), redisConf(srv.Addr(), `,"redis_timeout":1000`))
	b := compile(t, t.Name(), redisConf(srv.Addr(), `,"redis_timeout":2000,"rejected_code":429`))
	require.NotSame(t, a.redis.conn, b.redis.conn, "separate clients")
	c := request(t, get, "10.0.0.1")
	var codes []int
	for _, in := range []*instance{a, b, a, b, a} {
		codes = append(codes, deferred(t, in, c).Status)
	}
	assert.Equal(t, []int{0, 0, 0, 429, 503}, codes)
}

func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	strict := compile(t, t.Name(), redisConf(srv.Addr(), ``))
	lenient := compile(t, t.Name()+"-d", redisConf(srv.Addr(), `,"allow_degradation":true`))
	c := request(t, get, "10.0.0.1")
	require.Equal(t, 0, deferred(t, strict, c).Status)
	srv.Stop()

	res := deferred(t, strict, c)
	assert.Equal(t, 500, res.Status)
	assert.Equal(t, `{"error_msg":"failed to limit count"}`+"\n", string(res.Body))
	assert.Equal(t, "Content-Type: application/json\r\n", string(res.Headers))

	res = deferred(t, lenient, c)
	assert.Equal(t, plugin.Result{}, res, "allow_degradation: the request goes on")

	// Redis back: counting resumes (its data is gone with the restart).
	srv.Restart()
	res = deferred(t, strict, c)
	assert.Equal(t, 0, res.Status)
	assert.Equal(t, "2", parseHeaders(res.Headers)["X-RateLimit-Remaining"])
}

// TestRedisTimeout: a Redis that accepts connections but never answers is
// a failure after redis_timeout, not a request stuck forever.
func TestRedisTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // read nothing, answer nothing
		}
	}()
	strict := compile(t, t.Name(), redisConf(ln.Addr().String(), `,"redis_timeout":100`))
	lenient := compile(t, t.Name()+"-d", redisConf(ln.Addr().String(), `,"redis_timeout":100,"allow_degradation":true`))
	c := request(t, get, "10.0.0.1")
	assert.Equal(t, 500, deferred(t, strict, c).Status)
	assert.Equal(t, plugin.Result{}, deferred(t, lenient, c))
}

func TestRedisClientShared(t *testing.T) {
	a := compile(t, "ra", redisConf("127.0.0.1:1", ``))
	b := compile(t, "rb", redisConf("127.0.0.1:1", `,"count":5`))
	assert.Same(t, a.redis.conn, b.redis.conn, "same connection settings: one pool")
}
