// Package limitcount is APISIX's limit-count plugin: at most count requests
// per key in a fixed window of time_window seconds, counted in this
// process (policy local, local.go) or in a Redis shared by several gateways
// (policy redis, redis.go).
//
// Compile runs on the builder goroutine. Access runs on the request's event
// loop: the local policy counts with atomics (no lock, no allocation); the
// redis policy hands the round trip to a goroutine with Ctx.Defer.
package limitcount

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/sluice-gw/sluice/plugin"
)

// name and priority: APISIX apisix/plugins/limit-count.lua (access phase).
const (
	name     = "limit-count"
	priority = 1002
)

type limitCount struct{}

func init() { plugin.Register(limitCount{}) }

func (limitCount) Name() string  { return name }
func (limitCount) Priority() int { return priority }

// Header names (APISIX defaults; plugin_metadata may rename them there).
var (
	hdrLimit     = []byte("X-RateLimit-Limit")
	hdrRemaining = []byte("X-RateLimit-Remaining")
	hdrReset     = []byte("X-RateLimit-Reset")
	jsonCT       = []byte("Content-Type: application/json\r\n")
)

// instance is one compiled limit-count configuration.
type instance struct {
	limit    int64 // count
	window   int64 // time_window in nanoseconds
	key      keySpec
	code     int    // rejected_code
	body     []byte // {"error_msg":...}\n, nil without rejected_msg
	headers  []byte // Content-Type when body is set
	show     bool   // show_limit_quota_header
	local    *localLimiter
	redis    *redisLimiter
	stateKey string // "route/<id>:<conf hash>", "group/<group>:<hash>" or "<scope>:<hash>"
	degrade  bool   // allow_degradation
	failBody []byte // the 500 body when Redis fails
	failHdrs []byte
}

var _ plugin.Accessor = (*instance)(nil)

// Access counts the request against its key's window. It runs on c's event
// loop; for the local policy it does not allocate.
func (in *instance) Access(c *plugin.Ctx) plugin.Result {
	start := len(c.Scratch)
	c.Scratch = in.key.appendKey(c.Scratch, c)
	key := c.Scratch[start:]
	if in.redis != nil {
		res := in.redisAccess(c, key)
		c.Scratch = c.Scratch[:start]
		return res
	}
	h := plugin.Hash(key) // (seeded: a client cannot aim at another key's counter)
	c.Scratch = c.Scratch[:start]
	remaining, reset, ok := in.local.incoming(h, c.Now)
	if in.show {
		c.SetRespHeaderInt(hdrLimit, in.limit)
		c.SetRespHeaderInt(hdrRemaining, remaining)
		c.SetRespHeaderInt(hdrReset, reset)
	}
	if !ok {
		return plugin.Result{Status: in.code, Body: in.body, Headers: in.headers}
	}
	return plugin.Result{}
}

// resetSeconds rounds the time left in a window up to whole seconds.
func resetSeconds(left int64) int64 {
	if left <= 0 {
		return 0
	}
	return (left + 1e9 - 1) / 1e9
}

// Compile checks conf against APISIX's limit-count schema and returns the
// instance. State (local counters, Redis clients) is shared with the
// previous table when the counting configuration did not change.
func (limitCount) Compile(raw json.RawMessage, env *plugin.Env) (plugin.Instance, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, plugin.Errorf(name, "invalid JSON: %v", err)
	}
	f := fields{m: m}
	var cf conf
	cf.parse(&f)
	if f.err != nil {
		return nil, f.err
	}
	in := &instance{
		limit:   cf.Count,
		window:  cf.TimeWindow * 1e9,
		code:    int(cf.RejectedCode),
		show:    cf.ShowHeader,
		degrade: cf.AllowDegradation,
	}
	ks, err := compileKey(cf.KeyType, cf.Key, env)
	if err != nil {
		return nil, err
	}
	in.key = ks
	if cf.RejectedMsg != nil {
		in.body = errorBody(*cf.RejectedMsg)
		in.headers = jsonCT
	}
	in.failBody, in.failHdrs = errorBody("failed to limit count"), jsonCT

	// Counters are per route (APISIX: <conf_type><conf_id>:<conf version>:
	// <key>), per group when group is set; the conf hash stands for the
	// version, so an unchanged configuration keeps its counters across
	// table rebuilds and two gateways with the same route share a Redis key.
	scope := env.Scope
	if env.RouteID != "" {
		scope = "route/" + env.RouteID
	}
	if cf.Group != "" {
		scope = "group/" + cf.Group
		// APISIX: every route of a group configures it the same, or the
		// write is refused ("group conf mismatched"), since they share
		// one counter
		if env.Shared != nil {
			k := "limit-count/" + scope
			if prev, ok := env.Shared[k].(uint64); ok && prev != cf.hash() {
				return nil, plugin.Errorf(name, "group conf mismatched")
			}
			env.Shared[k] = cf.hash()
		}
	}
	in.stateKey = scope + ":" + strconv.FormatUint(cf.hash(), 16)

	switch cf.Policy {
	case "local":
		in.local = getLocal(in.stateKey, in.limit, in.window)
	case "redis":
		in.redis = newRedisLimiter(&cf, in.stateKey)
	}
	return in, nil
}

// errorBody is APISIX's `{ error_msg = msg }` body (core.response.exit
// appends a newline).
func errorBody(msg string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b) // Encode adds the trailing newline
	enc.SetEscapeHTML(false)
	_ = enc.Encode(struct {
		ErrorMsg string `json:"error_msg"`
	}{msg})
	return b.Bytes()
}

// conf is the decoded configuration (APISIX field names).
type conf struct {
	Count            int64   `json:"count"`
	TimeWindow       int64   `json:"time_window"`
	KeyType          string  `json:"key_type"`
	Key              string  `json:"key"`
	RejectedCode     int64   `json:"-"`
	RejectedMsg      *string `json:"-"`
	Policy           string  `json:"policy"`
	AllowDegradation bool    `json:"-"`
	ShowHeader       bool    `json:"-"`
	Group            string  `json:"group"`

	RedisHost     string `json:"-"`
	RedisPort     int64  `json:"-"`
	RedisUsername string `json:"-"`
	RedisPassword string `json:"-"`
	RedisDatabase int64  `json:"-"`
	RedisTimeout  int64  `json:"-"` // milliseconds
}

// hash identifies the counting part of the configuration (the JSON-tagged
// fields): changing count, time_window, the key, the policy or the group
// starts new counters, as a new conf version does in APISIX; changing the
// rejection or Redis connection settings does not.
func (cf *conf) hash() uint64 {
	b, _ := json.Marshal(cf)
	return xxhash.Sum64(b)
}

func (cf *conf) parse(f *fields) {
	if f.has("rules") {
		// APISIX 3.16+: rules[] replaces count/time_window.
		if f.has("count") {
			f.fail(`value should match only one schema, but matches both "count" and "rules"`)
			return
		}
		f.fail(`property "rules" is not supported by sluice: use count and time_window`)
		return
	}
	cf.Count = f.int("count", 0, 1, math.MaxInt64, true)
	cf.TimeWindow = f.int("time_window", 0, 1, math.MaxInt64/int64(time.Second), true)
	cf.KeyType = f.enum("key_type", "var", "var", "var_combination", "constant")
	cf.Key = f.str("key", "remote_addr", 1)
	cf.RejectedCode = f.int("rejected_code", 503, 200, 599, false)
	if _, ok := f.m["rejected_msg"]; ok {
		s := f.str("rejected_msg", "", 1)
		cf.RejectedMsg = &s
	}
	cf.Policy = f.enum("policy", "local", "local", "redis", "redis-cluster", "redis-sentinel")
	cf.AllowDegradation = f.bool("allow_degradation", false)
	cf.ShowHeader = f.bool("show_limit_quota_header", true)
	cf.Group = f.str("group", "", 1)
	if f.err != nil {
		return
	}
	// What sluice does not implement is refused, not silently ignored.
	switch {
	case f.str("window_type", "fixed", 0) != "fixed":
		f.fail(`property "window_type" validation failed: sluice supports only "fixed"`)
	case cf.Policy == "redis-cluster" || cf.Policy == "redis-sentinel":
		f.fail(`property "policy" validation failed: %q is not supported by sluice (use "local" or "redis")`, cf.Policy)
	case f.has("sync_interval"):
		f.fail(`property "sync_interval" is not supported by sluice`)
	}
	if f.err != nil {
		return
	}
	if cf.Policy != "redis" {
		return
	}
	if !f.has("redis_host") {
		f.fail(`property "redis_host" is required`)
		return
	}
	cf.RedisHost = f.str("redis_host", "", 2)
	cf.RedisPort = f.int("redis_port", 6379, 1, 65535, false)
	cf.RedisUsername = f.str("redis_username", "", 1)
	cf.RedisPassword = f.str("redis_password", "", 0)
	cf.RedisDatabase = f.int("redis_database", 0, 0, math.MaxInt32, false)
	cf.RedisTimeout = f.int("redis_timeout", 1000, 1, 3600_000, false)
	if f.bool("redis_ssl", false) {
		f.fail(`property "redis_ssl" is not supported by sluice`)
	}
}

// fields reads APISIX-schema values out of a JSON object, keeping the first
// error in APISIX's wording.
type fields struct {
	m   map[string]json.RawMessage
	err error
}

func (f *fields) fail(format string, args ...any) {
	if f.err == nil {
		f.err = plugin.Errorf(name, format, args...)
	}
}

// wrongType fails with the schema's error for property k of kind v.
func (f *fields) wrongType(k, want string, v json.RawMessage) {
	if f.err == nil {
		f.err = plugin.WrongType(name, k, want, plugin.JSONKind(v))
	}
}

func (f *fields) has(k string) bool {
	v, ok := f.m[k]
	return ok && string(v) != "null"
}

// value returns k's value; ok is false when k is absent or null, or when
// an earlier error ended the reading.
func (f *fields) value(k string) (v json.RawMessage, ok bool) {
	if f.err != nil {
		return nil, false
	}
	v, ok = f.m[k]
	return v, ok && string(v) != "null"
}

func (f *fields) int(k string, def, lo, hi int64, required bool) int64 {
	v, ok := f.value(k)
	if !ok {
		if required {
			f.fail(`property %q is required`, k)
		}
		return def
	}
	if plugin.JSONKind(v) != "number" {
		if k == "count" && plugin.JSONKind(v) == "string" {
			f.fail(`property "count" validation failed: a variable count is not supported by sluice, use an integer`)
			return def
		}
		f.wrongType(k, "integer", v)
		return def
	}
	x, err := strconv.ParseFloat(string(bytes.TrimSpace(v)), 64)
	if err != nil || x != math.Trunc(x) {
		f.fail(`property %q validation failed: wrong type: expected integer, got number`, k)
		return def
	}
	switch {
	case x < float64(lo) && lo == 1:
		f.fail(`property %q validation failed: expected %s to be greater than 0`, k, string(bytes.TrimSpace(v)))
	case x < float64(lo):
		f.fail(`property %q validation failed: expected %s to be at least %d`, k, string(bytes.TrimSpace(v)), lo)
	case x > float64(hi):
		f.fail(`property %q validation failed: expected %s to be at most %d`, k, string(bytes.TrimSpace(v)), hi)
	default:
		return int64(x)
	}
	return def
}

func (f *fields) str(k, def string, minLen int) string {
	v, ok := f.value(k)
	if !ok {
		return def
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		f.wrongType(k, "string", v)
		return def
	}
	if len(s) < minLen {
		f.fail(`property %q validation failed: string too short, expected at least %d, got %d`, k, minLen, len(s))
		return def
	}
	return s
}

func (f *fields) enum(k, def string, vals ...string) string {
	s := f.str(k, def, 0)
	if f.err != nil {
		return def
	}
	for _, v := range vals {
		if s == v {
			return s
		}
	}
	f.fail(`property %q validation failed: matches none of the enum values`, k)
	return def
}

func (f *fields) bool(k string, def bool) bool {
	v, ok := f.value(k)
	if !ok {
		return def
	}
	var b bool
	if err := json.Unmarshal(v, &b); err != nil {
		f.wrongType(k, "boolean", v)
		return def
	}
	return b
}

// varRef is one compiled variable reference of a key.
type varRef struct {
	v      plugin.Var
	val    string // service_id: known at Compile time
	def    []byte // ${name ?? def}
	hasDef bool
}

// segment is literal text followed by an optional variable
// (var_combination).
type segment struct {
	lit []byte
	ref *varRef
}

// keySpec is a compiled key: a variable, a combination or a constant.
type keySpec struct {
	segs []segment
}

// compileKey compiles key for key_type (APISIX limit-count: var is one
// variable name, var_combination a string with $var references
// (plugin.ParseTemplate), constant a literal).
func compileKey(keyType, key string, env *plugin.Env) (keySpec, error) {
	switch keyType {
	case "constant":
		return keySpec{segs: []segment{{lit: []byte(key)}}}, nil
	case "var":
		r, err := compileVar(strings.TrimPrefix(key, "$"), env)
		if err != nil {
			return keySpec{}, err
		}
		return keySpec{segs: []segment{{ref: r}}}, nil
	}
	ks := keySpec{}
	for _, p := range plugin.ParseTemplate(key) {
		if p.Literal() {
			ks.segs = append(ks.segs, segment{lit: []byte(p.Lit)})
			continue
		}
		r, err := compileVar(p.Var, env)
		if err != nil {
			return keySpec{}, err
		}
		r.def, r.hasDef = []byte(p.Def), p.HasDef
		ks.segs = append(ks.segs, segment{ref: r})
	}
	return ks, nil
}

// compileVar resolves a variable name; names sluice does not know are
// refused (APISIX would silently fall back to remote_addr).
func compileVar(v string, env *plugin.Env) (*varRef, error) {
	r := &varRef{v: plugin.ParseVar(v)}
	switch {
	case r.v.Kind == plugin.VarNone || r.v.Kind == plugin.VarPostArg || strings.Contains(v, "."):
		return nil, plugin.Errorf(name, `property "key" validation failed: variable %q is not supported by sluice (supported: remote_addr, consumer_name, route_id, service_id, host, uri, request_uri, args, request_method, http_*, arg_*, cookie_*; write ${name} when text follows a variable)`, v)
	case r.v.Kind == plugin.VarServiceID:
		r.val = env.ServiceID
	}
	return r, nil
}

// appendValue appends the variable's value to dst, or its default when
// the variable is missing (APISIX resolve_var: nil, not empty); present
// reports a value or a default (APISIX counts it in n_resolved). It does
// not allocate beyond growing dst.
func (r *varRef) appendValue(dst []byte, c *plugin.Ctx) (_ []byte, present bool) {
	if r.v.Kind == plugin.VarServiceID {
		dst, present = append(dst, r.val...), r.val != ""
	} else {
		dst, present = r.v.AppendCtx(dst, c)
	}
	if !present && r.hasDef {
		return append(dst, r.def...), true
	}
	return dst, present
}

var remoteAddr = plugin.Var{Kind: plugin.VarRemoteAddr}

// appendKey appends the request's key value to dst. An empty value falls
// back to the client address (APISIX: "The value of the configured key is
// empty, use client IP instead"); for var_combination that is when no
// variable had a value.
func (k *keySpec) appendKey(dst []byte, c *plugin.Ctx) []byte {
	start := len(dst)
	resolved, hasVar := false, false
	for i := range k.segs {
		s := &k.segs[i]
		dst = append(dst, s.lit...)
		if s.ref != nil {
			hasVar = true
			var ok bool
			dst, ok = s.ref.appendValue(dst, c)
			resolved = resolved || ok
		}
	}
	if hasVar && !resolved || len(dst) == start {
		dst, _ = remoteAddr.Append(dst[:start], nil, c.RemoteAddr)
	}
	return dst
}
