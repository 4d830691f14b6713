// Package keyauth is APISIX's key-auth plugin (apisix/plugins/key-auth.lua,
// priority 2500, rewrite phase): a request names its consumer with an API
// key, sent in a header (default "apikey") or, when that header is absent,
// in a query argument (default "apikey"). A consumer's key is
// plugins["key-auth"].key on the consumer object.
//
// Compile runs on the builder goroutine and builds a key → username map from
// Env.Consumers; Rewrite runs on the request's event loop, looks the key up
// without allocating and sets Ctx.Consumer. Instances are immutable.
package keyauth

import (
	"bytes"
	"encoding/json"

	"github.com/sluice-gw/sluice/engine/http1"
	"github.com/sluice-gw/sluice/plugin"
)

// name is the APISIX plugin name.
const name = "key-auth"

func init() { plugin.Register(keyAuth{}) }

// keyAuth is the plugin kind.
type keyAuth struct{}

// Name returns "key-auth".
func (keyAuth) Name() string { return name }

// Priority is APISIX's: key-auth runs first among sluice's plugins.
func (keyAuth) Priority() int { return 2500 } // apisix/plugins/key-auth.lua

// conf is a compiled key-auth configuration.
type conf struct {
	header  []byte               // header carrying the key; matched case-insensitively, '_' = '-'
	query   []byte               // query argument carrying the key when the header is absent
	hide    bool                 // hide_credentials: strip the key from the upstream request
	keys    map[string]*identity // consumer key → who it is
	missing plugin.Result        // 401 Missing API key in request
	invalid plugin.Result        // 401 Invalid API key in request
}

var _ plugin.Rewriter = (*conf)(nil)

// emptyQuery is a non-nil empty query: hide_credentials removed the only
// argument, so the upstream request has no query at all.
var emptyQuery = []byte{}

// Compile checks the route configuration against APISIX's schema (header,
// query, realm, hide_credentials; other keys are ignored, as APISIX's
// schema allows them) and indexes the consumers' keys. anonymous_consumer
// is refused: sluice has no anonymous-consumer fallback. A key two
// consumers share (the Admin API refuses that; another writer of a shared
// etcd may not) authenticates neither, nor does a key a Blocked consumer
// holds.
func (keyAuth) Compile(raw json.RawMessage, env *plugin.Env) (plugin.Instance, error) {
	m, err := plugin.Object(name, raw)
	if err != nil {
		return nil, err
	}
	c := &conf{header: []byte("apikey"), query: []byte("apikey")}
	realm := "key"
	for _, f := range []string{"header", "query", "realm"} {
		s, ok, err := plugin.StringProp(name, m, f)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		switch f {
		case "header":
			c.header = []byte(s)
		case "query":
			c.query = []byte(s)
		case "realm":
			// APISIX schema_def.get_realm_schema: printable ASCII without '"' and '\'.
			if !realmOK(s) {
				return nil, plugin.Errorf(name, `property "realm" validation failed: failed to match pattern %q with %q`, realmPattern, s)
			}
			realm = s
		}
	}
	if c.hide, _, err = plugin.BoolProp(name, m, "hide_credentials"); err != nil {
		return nil, err
	}
	if _, ok := m["anonymous_consumer"]; ok {
		return nil, plugin.Errorf(name, `property "anonymous_consumer" validation failed: not supported by sluice`)
	}

	c.keys = make(map[string]*identity)
	for _, cs := range env.Consumers {
		ka, ok := cs.Plugins[name]
		if !ok {
			continue
		}
		// the field named exactly "key", as the Admin API's checks read
		// it (a struct would also take "Key" or "KEY", which APISIX's
		// schema leaves as unknown extra fields)
		var conf map[string]json.RawMessage
		var key string
		if json.Unmarshal(ka, &conf) != nil || json.Unmarshal(conf["key"], &key) != nil || key == "" {
			continue // the Admin API and the standalone loader refuse these
		}
		if _, dup := c.keys[key]; dup || cs.Blocked {
			// the Admin API refuses a shared key, but another writer
			// of a shared etcd may not have: a key that names two
			// consumers identifies neither, nor does one held by a
			// consumer that does not validate
			c.keys[key] = nil
			continue
		}
		c.keys[key] = newIdentity(cs.Username)
	}

	// APISIX 3.15+: WWW-Authenticate on every 401.
	hdr := []byte("Content-Type: application/json\r\nWWW-Authenticate: apikey realm=\"" + realm + "\"\r\n")
	// (core.response.exit ends a JSON body with a newline, as limit-count's)
	c.missing = plugin.Result{Status: 401, Body: []byte(`{"message":"Missing API key in request"}` + "\n"), Headers: hdr}
	c.invalid = plugin.Result{Status: 401, Body: []byte(`{"message":"Invalid API key in request"}` + "\n"), Headers: hdr}
	return c, nil
}

// identity is an authenticated consumer and the headers that tell the
// upstream who it is (APISIX attach_consumer): X-Consumer-Username set,
// X-Credential-Identifier and X-Consumer-Custom-ID removed (sluice has no
// separate credentials and no custom_id label), so a client cannot send
// its own values to an upstream that trusts them.
type identity struct {
	user string
	ops  []plugin.HeaderOp
}

func newIdentity(user string) *identity {
	return &identity{user: user, ops: []plugin.HeaderOp{
		{Kind: plugin.HeaderSet, Name: []byte("X-Consumer-Username"), Value: []byte(user)},
		{Kind: plugin.HeaderRemove, Name: []byte("X-Credential-Identifier")},
		{Kind: plugin.HeaderRemove, Name: []byte("X-Consumer-Custom-ID")},
	}}
}

// Rewrite authenticates the request: the header wins over the query
// argument (APISIX find_consumer). On success it sets c.Consumer and, with
// hide_credentials, removes the header (c.HeaderOps) or the query argument
// (c.Query, built in c.Scratch) that carried the key. It must be called on
// c's event loop; it does not allocate once c's HeaderOps and Scratch have
// grown.
func (k *conf) Rewrite(c *plugin.Ctx) plugin.Result {
	hi := c.Req.HeaderVarIndex(k.header) // nginx header lookup: any case, '_' = '-'
	var key []byte
	if hi >= 0 {
		key = c.Req.Headers[hi].Value
	} else if key = c.Req.Arg(k.query); key == nil {
		return k.missing
	} else if bytes.IndexByte(key, '%') >= 0 || bytes.IndexByte(key, '+') >= 0 {
		// a query carries the key encoded (?apikey=a%2Bb%2F: "a+b/"), as
		// APISIX reads it decoded
		start := len(c.Scratch)
		c.Scratch = http1.AppendUnescapeArg(c.Scratch, key)
		key = c.Scratch[start:]
	}
	id := k.keys[string(key)] // no allocation: the compiler converts in place
	if id == nil {
		return k.invalid // unknown, or shared by two consumers
	}
	c.Consumer = id.user
	c.HeaderOps = append(c.HeaderOps, id.ops...)
	if k.hide {
		if hi >= 0 {
			c.HeaderOps = append(c.HeaderOps, plugin.HeaderOp{Kind: plugin.HeaderRemove, Name: c.Req.Headers[hi].Name})
		} else {
			k.stripQuery(c)
		}
	}
	return plugin.Result{}
}

// stripQuery sets c.Query to the query without the arguments named
// k.query (all of them, as APISIX's args[conf.query] = nil); the other
// arguments keep their order and raw bytes. Empty arguments are dropped.
func (k *conf) stripQuery(c *plugin.Ctx) {
	q := c.Query
	if q == nil {
		q = c.Req.Query
	}
	start := len(c.Scratch)
	for len(q) > 0 {
		var a []byte
		a, q = http1.CutArg(q)
		if n, _ := http1.SplitArg(a); len(a) == 0 || bytes.Equal(n, k.query) {
			continue
		}
		if len(c.Scratch) > start {
			c.Scratch = append(c.Scratch, '&')
		}
		c.Scratch = append(c.Scratch, a...)
	}
	if len(c.Scratch) == start {
		c.Query = emptyQuery
		return
	}
	end := len(c.Scratch)
	c.Query = c.Scratch[start:end:end]
}

// realmPattern is APISIX's realm schema pattern (for errors).
const realmPattern = `^[\x20-\x21\x23-\x5B\]-\x7E]+$`

// realmOK matches APISIX's realm pattern ^[\x20-\x21\x23-\x5B\]-\x7E]+$.
func realmOK(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x20 || b > 0x7e || b == '"' || b == '\\' {
			return false
		}
	}
	return true
}
