package balancer

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBuildErrors(t *testing.T) {
	addr := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:8001")}
	f := func(name, want string, mod func(u *Upstream)) {
		t.Helper()
		u := &Upstream{Key: "upstreams/1", Scheme: "http", Nodes: []Node{{Host: "a", Port: 80, Weight: 1, Addrs: addr}}}
		mod(u)
		err := u.Build()
		if want == "" {
			assert.NoError(t, err, name)
			return
		}
		require.Error(t, err, name)
		assert.Equal(t, "balancer: upstream upstreams/1: "+want, err.Error(), name)
	}
	f("ok", "", func(u *Upstream) {})
	f("no nodes", "no nodes", func(u *Upstream) { u.Nodes = nil })
	f("negative weight", "node a:80: weight -1: want 0..2147483647", func(u *Upstream) { u.Nodes[0].Weight = -1 })
	f("huge weight", "node a:80: weight 4294967296: want 0..2147483647", func(u *Upstream) { u.Nodes[0].Weight = 1 << 32 })
	f("zero weight", "", func(u *Upstream) { u.Nodes[0].Weight = 0 })
	f("no addrs", "node a:80: no resolved address", func(u *Upstream) { u.Nodes[0].Addrs = nil })
	f("bad addr", "node a:80: invalid address", func(u *Upstream) { u.Nodes[0].Addrs = []netip.AddrPort{{}} })
	f("scheme", `scheme "grpc": want http or https`, func(u *Upstream) { u.Scheme = "grpc" })
	f("kind", "unknown balancer type 9", func(u *Upstream) { u.Kind = 9 })
	f("empty host", "node 0: empty host", func(u *Upstream) { u.Nodes[0].Host = "" })
	f("port", "node a:70000: port 70000 out of range", func(u *Upstream) { u.Nodes[0].Port = 70000 })
	f("second node", "node b:80: no resolved address", func(u *Upstream) {
		u.Nodes = append(u.Nodes, Node{Host: "b", Port: 80, Weight: 1})
	})
}

func TestBuildDefaults(t *testing.T) {
	addr := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:8001")}
	u := &Upstream{Key: "u", Nodes: []Node{
		{Host: "a.example", Weight: 1, Addrs: addr},
		{Host: "b.example", Port: 8080, Weight: 1, Addrs: addr},
		{Host: "::1", Port: 8080, Weight: 1, Addrs: addr},
		{Host: "c.example", Weight: 1, Addrs: addr, HostHeader: []byte("kept")},
	}}
	require.NoError(t, u.Build())
	assert.Equal(t, "http", u.Scheme)
	assert.Equal(t, 80, u.Nodes[0].Port)
	assert.Equal(t, "a.example", string(u.Nodes[0].HostHeader))
	assert.Equal(t, "b.example:8080", string(u.Nodes[1].HostHeader))
	assert.Equal(t, "[::1]:8080", string(u.Nodes[2].HostHeader))
	assert.Equal(t, "kept", string(u.Nodes[3].HostHeader))

	s := &Upstream{Key: "s", Scheme: "https", Nodes: []Node{{Host: "a", Weight: 1, Addrs: addr}, {Host: "b", Port: 80, Weight: 1, Addrs: addr}}}
	require.NoError(t, s.Build())
	assert.Equal(t, 443, s.Nodes[0].Port)
	assert.Equal(t, "a", string(s.Nodes[0].HostHeader))
	assert.Equal(t, "b:80", string(s.Nodes[1].HostHeader))
}

func TestBuildSortsByPriority(t *testing.T) {
	u := build(t, nil, "p", RoundRobin,
		spec{name: "a", weight: 1, priority: 0},
		spec{name: "b", weight: 1, priority: 2},
		spec{name: "c", weight: 1, priority: -1},
		spec{name: "d", weight: 1, priority: 2},
		spec{name: "e", weight: 1, priority: 0},
	)
	assert.Equal(t, []string{"b", "d", "a", "e", "c"}, hosts(u))
	assert.Equal(t, []int32{0, 2, 4, 5}, u.groups)
	// Built twice (as the builder may): same result.
	require.NoError(t, u.Build())
	assert.Equal(t, []string{"b", "d", "a", "e", "c"}, hosts(u))
	assert.Equal(t, []int32{0, 2, 4, 5}, u.groups)
}
