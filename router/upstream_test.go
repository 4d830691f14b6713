package router

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/model"
)

func compile(t *testing.T, m *model.Upstream) (*balancer.Upstream, error) {
	t.Helper()
	b := &Builder{Resolver: fakeResolver{
		"api.example":   {"10.0.0.2", "10.0.0.1", "10.0.0.1", "::ffff:10.0.0.3", "2001:db8::1"},
		"one.example":   {"192.0.2.1"},
		"empty.example": {},
	}}
	return b.compileUpstream("upstreams/1", m)
}

func TestCompileUpstreamDefaults(t *testing.T) {
	u, err := compile(t, upstreamTo(mnode("10.0.0.1", 0, 3), mnode("10.0.0.2", 8080, 1)))
	require.NoError(t, err)
	assert.Equal(t, "upstreams/1", u.Key)
	assert.Equal(t, balancer.RoundRobin, u.Kind)
	assert.Equal(t, "http", u.Scheme)
	assert.Equal(t, balancer.PassClient, u.PassHost)
	assert.Equal(t, balancer.HashVars, u.HashOn)
	assert.Equal(t, balancer.Timeouts{Connect: 60 * time.Second, Send: 60 * time.Second, Read: 60 * time.Second}, u.Timeouts)
	assert.Equal(t, 1, u.Retries) // nodes - 1
	assert.Zero(t, u.RetryTimeout)
	assert.Equal(t, balancer.Keepalive{Size: 320, IdleTimeout: 60 * time.Second, Requests: 1000}, u.Keepalive)
	assert.True(t, u.TLS.Verify, "sluice verifies upstream certificates by default")
	assert.Empty(t, u.TLS.ServerName)
	require.Len(t, u.Nodes, 2)
	n := u.Nodes[0]
	assert.Equal(t, "10.0.0.1", n.Host)
	assert.Equal(t, 80, n.Port)
	assert.Equal(t, 3, n.Weight)
	assert.Equal(t, []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:80")}, n.Addrs)
	assert.Equal(t, "10.0.0.1", string(n.HostHeader))
	assert.NotNil(t, n.State)
	assert.Equal(t, "10.0.0.2:8080", string(u.Nodes[1].HostHeader))
}

func TestCompileUpstreamHostHeader(t *testing.T) {
	f := func(scheme, host string, port int, want string) {
		t.Helper()
		m := upstreamTo(mnode(host, port, 1))
		m.Scheme = scheme
		u, err := compile(t, m)
		require.NoError(t, err)
		assert.Equal(t, want, string(u.Nodes[0].HostHeader), "%s %s %d", scheme, host, port)
	}
	f("http", "one.example", 0, "one.example")
	f("http", "one.example", 80, "one.example")
	f("http", "one.example", 8080, "one.example:8080")
	f("http", "one.example", 443, "one.example:443")
	f("https", "one.example", 0, "one.example")
	f("https", "one.example", 443, "one.example")
	f("https", "one.example", 80, "one.example:80")
	f("http", "::1", 8080, "[::1]:8080")
	f("http", "[::1]", 80, "[::1]") // map form {"[::1]:80": 1}
	f("https", "2001:db8::2", 0, "[2001:db8::2]")

	m := upstreamTo(mnode("one.example", 0, 1))
	m.Scheme = "https"
	u, err := compile(t, m)
	require.NoError(t, err)
	assert.Equal(t, 443, u.Nodes[0].Port)
	assert.Equal(t, "192.0.2.1:443", u.Nodes[0].Addrs[0].String())
}

func TestCompileUpstreamPassHost(t *testing.T) {
	m := upstreamTo(mnode("10.0.0.1", 0, 1))
	m.PassHost = "rewrite"
	_, err := compile(t, m)
	require.Error(t, err)
	assert.Equal(t, `router: upstream "upstreams/1": pass_host "rewrite" requires upstream_host`, err.Error())

	m.UpstreamHost = "test.com"
	m.Scheme = "https"
	u, err := compile(t, m)
	require.NoError(t, err)
	assert.Equal(t, balancer.PassRewrite, u.PassHost)
	assert.Equal(t, "test.com", string(u.UpstreamHost))
	assert.Equal(t, "test.com", u.TLS.ServerName)
	// SNI and the verified name are the host alone; Host keeps the port
	for host, sni := range map[string]string{"test.com:8443": "test.com", "[::1]:8443": "::1", "[::1]": "::1"} {
		m.UpstreamHost = host
		u, err = compile(t, m)
		require.NoError(t, err)
		assert.Equal(t, host, string(u.UpstreamHost))
		assert.Equal(t, sni, u.TLS.ServerName, host)
	}
	m.UpstreamHost = "test.com"

	m.PassHost = "node"
	u, err = compile(t, m)
	require.NoError(t, err)
	assert.Equal(t, balancer.PassNode, u.PassHost)
	assert.Empty(t, u.TLS.ServerName)

	m.PassHost = "other"
	_, err = compile(t, m)
	assert.EqualError(t, err, `router: upstream "upstreams/1": pass_host "other": want pass, node or rewrite`)
}

func TestCompileUpstreamDNS(t *testing.T) {
	u, err := compile(t, upstreamTo(mnode("api.example", 8080, 1)))
	require.NoError(t, err)
	require.Len(t, u.Nodes, 1)
	assert.Equal(t, "api.example", u.Nodes[0].Host)
	assert.Equal(t, "api.example:8080", string(u.Nodes[0].HostHeader))
	var got []string
	for _, a := range u.Nodes[0].Addrs {
		got = append(got, a.String())
	}
	// all answers, unmapped, deduplicated, sorted
	assert.Equal(t, []string{"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080", "[2001:db8::1]:8080"}, got)

	_, err = compile(t, upstreamTo(mnode("10.0.0.1", 0, 1), mnode("nope.example", 0, 1)))
	assert.EqualError(t, err, `router: upstream "upstreams/1": nodes[1]: resolve host "nope.example": no such host`)
	_, err = compile(t, upstreamTo(mnode("empty.example", 0, 1)))
	assert.EqualError(t, err, `router: upstream "upstreams/1": nodes[0]: resolve host "empty.example": no addresses`)
}

func TestCompileUpstreamFields(t *testing.T) {
	m := &model.Upstream{
		Type:          "chash",
		HashOn:        "header",
		Key:           "X-User",
		Nodes:         model.Nodes{mnode("10.0.0.1", 0, 1), mnode("10.0.0.2", 0, 1), {Host: "10.0.0.3", Weight: 1, Priority: 5}},
		Timeout:       &model.Timeout{Connect: 0.5, Read: 30},
		Retries:       ptr(0),
		RetryTimeout:  2.5,
		KeepalivePool: &model.KeepalivePool{Size: 10, IdleTimeout: 5},
		TLS:           &model.UpstreamTLS{Verify: ptr(false), ClientCert: "CERT", ClientKey: "KEY"},
		Scheme:        "https",
	}
	u, err := compile(t, m)
	require.NoError(t, err)
	assert.Equal(t, balancer.CHash, u.Kind)
	assert.Equal(t, balancer.HashHeader, u.HashOn)
	assert.Equal(t, "X-User", u.HashKey)
	assert.Equal(t, balancer.Timeouts{Connect: 500 * time.Millisecond, Send: 60 * time.Second, Read: 30 * time.Second}, u.Timeouts)
	assert.Equal(t, 0, u.Retries)
	assert.Equal(t, 2500*time.Millisecond, u.RetryTimeout)
	assert.Equal(t, balancer.Keepalive{Size: 10, IdleTimeout: 5 * time.Second, Requests: 1000}, u.Keepalive)
	assert.False(t, u.TLS.Verify)
	assert.Equal(t, []byte("CERT"), u.TLS.ClientCert)
	assert.Equal(t, []byte("KEY"), u.TLS.ClientKey)
	assert.Equal(t, "10.0.0.3", u.Nodes[0].Host, "balancer sorts by priority")
	// the client identity is by content: a rebuilt table keeps its pools
	again, err := compile(t, m)
	require.NoError(t, err)
	assert.NotZero(t, u.TLS.Identity)
	assert.Equal(t, u.TLS.Identity, again.TLS.Identity)
	m.TLS.ClientKey = "OTHER"
	other, err := compile(t, m)
	require.NoError(t, err)
	assert.NotEqual(t, u.TLS.Identity, other.TLS.Identity)
	m.TLS.ClientKey = "KEY"

	for typ, kind := range map[string]balancer.Kind{"roundrobin": balancer.RoundRobin, "least_conn": balancer.LeastConn, "ewma": balancer.EWMA} {
		u, err := compile(t, &model.Upstream{Type: typ, Nodes: model.Nodes{mnode("10.0.0.1", 0, 1)}})
		require.NoError(t, err)
		assert.Equal(t, kind, u.Kind, typ)
	}
	for on, want := range map[string]balancer.HashOn{"vars": balancer.HashVars, "cookie": balancer.HashCookie, "vars_combinations": balancer.HashVarsCombinations} {
		u, err := compile(t, &model.Upstream{Type: "chash", HashOn: on, Key: "k", Nodes: model.Nodes{mnode("10.0.0.1", 0, 1)}})
		require.NoError(t, err)
		assert.Equal(t, want, u.HashOn, on)
	}
	u, err = compile(t, &model.Upstream{Type: "chash", HashOn: "consumer", Nodes: model.Nodes{mnode("10.0.0.1", 0, 1)}})
	require.NoError(t, err)
	assert.Equal(t, balancer.HashConsumer, u.HashOn)
}

func TestCompileUpstreamErrors(t *testing.T) {
	f := func(want string, m *model.Upstream) {
		t.Helper()
		_, err := compile(t, m)
		require.Error(t, err, want)
		assert.Equal(t, want, err.Error())
	}
	n := model.Nodes{mnode("10.0.0.1", 0, 1)}
	f(`router: upstream "upstreams/1": type "random": want roundrobin, chash, least_conn or ewma`, &model.Upstream{Type: "random", Nodes: n})
	f(`router: upstream "upstreams/1": scheme "grpc": want http or https`, &model.Upstream{Scheme: "grpc", Nodes: n})
	f(`router: upstream "upstreams/1": hash_on "ip": want vars, header, cookie, consumer or vars_combinations`, &model.Upstream{HashOn: "ip", Nodes: n})
	f(`router: upstream "upstreams/1": key: required for type chash (unless hash_on is consumer)`, &model.Upstream{Type: "chash", Nodes: n})
	f(`router: upstream "upstreams/1": retries -1: want >= 0`, &model.Upstream{Retries: ptr(-1), Nodes: n})
	f(`router: upstream "upstreams/1": timeout.read -1: want > 0`, &model.Upstream{Timeout: &model.Timeout{Read: -1}, Nodes: n})
	f(`router: upstream "upstreams/1": tls: client_cert and client_key go together`, &model.Upstream{TLS: &model.UpstreamTLS{ClientCert: "x"}, Nodes: n})
	f(`router: upstream "upstreams/1": nodes[0]: port 70000 out of range`, upstreamTo(mnode("10.0.0.1", 70000, 1)))
	f(`router: upstream "upstreams/1": nodes[0]: weight -1: want >= 0`, upstreamTo(mnode("10.0.0.1", 80, -1)))
	f(`router: upstream "upstreams/1": nodes[0]: empty host`, upstreamTo(mnode("", 80, 1)))
}

func TestCompileUpstreamNoNodes(t *testing.T) {
	// APISIX accepts it and answers 502; the balancer's Pick returns -1.
	u, err := compile(t, &model.Upstream{})
	require.NoError(t, err)
	assert.Empty(t, u.Nodes)
	assert.Equal(t, 0, u.Retries)
	n, _ := balancer.NewCursor(u).Pick(u, 0, nil, 0)
	assert.Equal(t, -1, n)
}
