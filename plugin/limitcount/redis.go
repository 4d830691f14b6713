package limitcount

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"
	"weak"

	"github.com/puzpuzpuz/xsync/v3"
	"github.com/redis/go-redis/v9"

	"github.com/sluice-gw/sluice/plugin"
)

// The redis policy keeps one counter per limit key in Redis, so every
// gateway pointed at the same Redis shares the limit (APISIX
// limit-count-redis.lua). The client is github.com/redis/go-redis/v9: a
// maintained client with a connection pool, per-call deadlines and script
// caching (EVALSHA with an EVAL fallback). Clients are shared by every
// configuration with the same connection settings and survive table
// rebuilds; one no table uses any more is closed when collected.

// countScript increments the key's counter and starts its window on the
// first request (a key left without a TTL gets one too); it returns the
// count and the milliseconds left in the window. A script runs atomically.
var countScript = redis.NewScript(`
local n = redis.call('incr', KEYS[1])
local ttl = redis.call('pttl', KEYS[1])
if ttl < 0 then
  redis.call('pexpire', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
`)

// redisConn owns one pooled client.
type redisConn struct{ c *redis.Client }

// clientKey is what makes two configurations' connections interchangeable.
type clientKey struct {
	addr, user, pass string
	db               int
	timeout          time.Duration
}

var clients = xsync.NewMapOf[clientKey, weak.Pointer[redisConn]]()

// getClient returns the shared client for k, creating it (no connection is
// made until the first command).
func getClient(k clientKey) *redisConn {
	var out *redisConn
	clients.Compute(k, func(old weak.Pointer[redisConn], loaded bool) (weak.Pointer[redisConn], bool) {
		if loaded {
			if rc := old.Value(); rc != nil {
				out = rc
				return old, false
			}
		}
		out = &redisConn{c: redis.NewClient(&redis.Options{
			Addr:     k.addr,
			Username: k.user,
			Password: k.pass,
			DB:       k.db,
			// RESP2 and no CLIENT SETINFO: works with any Redis >= 2.6.
			Protocol:        2,
			DisableIdentity: true,
			// redis_timeout bounds every step: dial, write, read, waiting
			// for a pooled connection, and the call as a whole (context).
			DialTimeout:           k.timeout,
			ReadTimeout:           k.timeout,
			WriteTimeout:          k.timeout,
			PoolTimeout:           k.timeout,
			ContextTimeoutEnabled: true,
			// One attempt: a request must not wait for retries, and the
			// script is not idempotent.
			MaxRetries:    -1,
			DialerRetries: 1,
		})}
		runtime.AddCleanup(out, func(c *redis.Client) { c.Close() }, out.c)
		wp := weak.Make(out)
		// Drop the map entry once the client is gone.
		runtime.AddCleanup(out, func(k clientKey) {
			clients.Compute(k, func(old weak.Pointer[redisConn], loaded bool) (weak.Pointer[redisConn], bool) {
				return old, !loaded || old == wp
			})
		}, k)
		return wp, false
	})
	return out
}

// redisLimiter is an instance's Redis side.
type redisLimiter struct {
	conn     *redisConn
	prefix   string // "plugin-limit-count:<state key>:"
	timeout  time.Duration
	windowMs int64
	lastLog  atomic.Int64 // unix nanos of the last failure logged
}

func newRedisLimiter(cf *conf, stateKey string) *redisLimiter {
	t := time.Duration(cf.RedisTimeout) * time.Millisecond
	return &redisLimiter{
		conn: getClient(clientKey{
			addr:    net.JoinHostPort(cf.RedisHost, strconv.FormatInt(cf.RedisPort, 10)),
			user:    cf.RedisUsername,
			pass:    cf.RedisPassword,
			db:      int(cf.RedisDatabase),
			timeout: t,
		}),
		prefix:   "plugin-limit-count:" + stateKey + ":",
		timeout:  t,
		windowMs: cf.TimeWindow * 1000,
	}
}

// redisAccess copies the key and counts the request in Redis off the loop:
// c.Defer's work does the round trip and returns the reject (or 500)
// Result with the quota headers in its Headers, or, when the request goes
// on, a zero-status Result whose Headers carry the quota headers (the
// engine adds them to the response). It allocates (the key string and the
// closure); the Redis round trip dominates anyway.
func (in *instance) redisAccess(c *plugin.Ctx, key []byte) plugin.Result {
	k := in.redis.prefix + string(key)
	return c.Defer(func() plugin.Result { return in.redisCount(k) })
}

// redisCount runs on a goroutine of its own: it must not touch the Ctx.
func (in *instance) redisCount(key string) plugin.Result {
	r := in.redis
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	res, err := countScript.Run(ctx, r.conn.c, []string{key}, r.windowMs).Int64Slice()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("unexpected reply %v", res)
	}
	if err != nil {
		r.logFailure(err)
		if in.degrade {
			return plugin.Result{}
		}
		// APISIX: core.log.error("failed to limit count: ", err);
		// return 500, {error_msg = "failed to limit count"}
		return plugin.Result{Status: 500, Body: in.failBody, Headers: in.failHdrs}
	}
	n, ttl := res[0], res[1]
	var hdr []byte
	if in.show {
		hdr = appendQuota(make([]byte, 0, 96+len(in.headers)), in.limit, max(in.limit-n, 0), resetSeconds(ttl*1e6))
	}
	if n > in.limit {
		return plugin.Result{Status: in.code, Body: in.body, Headers: append(hdr, in.headers...)}
	}
	return plugin.Result{Headers: hdr}
}

// appendQuota appends the three quota header lines.
func appendQuota(dst []byte, limit, remaining, reset int64) []byte {
	for _, h := range [...]struct {
		name []byte
		v    int64
	}{{hdrLimit, limit}, {hdrRemaining, remaining}, {hdrReset, reset}} {
		dst = append(dst, h.name...)
		dst = append(dst, ": "...)
		dst = strconv.AppendInt(dst, h.v, 10)
		dst = append(dst, "\r\n"...)
	}
	return dst
}

// logFailure logs a Redis failure, at most once a second per instance.
func (r *redisLimiter) logFailure(err error) {
	now := time.Now().UnixNano()
	last := r.lastLog.Load()
	if now-last < int64(time.Second) || !r.lastLog.CompareAndSwap(last, now) {
		return
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("redis_timeout (%s) exceeded: %w", r.timeout, err)
	}
	slog.Error("limit-count: failed to limit count", "redis", r.conn.c.Options().Addr, "err", err)
}

// quietLogger keeps go-redis's internal log lines (pool and dial
// chatter) out of the gateway log; failures are logged by logFailure.
type quietLogger struct{}

func (quietLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.Debug("limit-count: redis: " + fmt.Sprintf(format, v...))
}

func init() { redis.SetLogger(quietLogger{}) }
