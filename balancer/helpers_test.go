package balancer

import (
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// spec describes one test node: host "name", weight, priority, and how many
// addresses (default 1).
type spec struct {
	name     string
	weight   int
	priority int
	addrs    int
}

// testNow is a fixed clock for deterministic tests.
var testNow = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// build returns a built upstream of kind with one node per spec, each with
// State from reg (a fresh registry when nil) and addresses 127.0.0.1:8001+.
func build(tb testing.TB, reg *Registry, key string, kind Kind, specs ...spec) *Upstream {
	tb.Helper()
	if reg == nil {
		reg = NewRegistry()
	}
	u := &Upstream{Key: key, Kind: kind, Scheme: "http"}
	port := 8001
	for _, s := range specs {
		n := Node{Host: s.name, Port: 80, Weight: s.weight, Priority: s.priority}
		for range max(s.addrs, 1) {
			n.Addrs = append(n.Addrs, netip.MustParseAddrPort("127.0.0.1:"+strconv.Itoa(port)))
			port++
		}
		n.State = reg.State(key, n.key())
		u.Nodes = append(u.Nodes, n)
	}
	require.NoError(tb, u.Build())
	return u
}

// nodes is a shorthand for equal-priority specs from name/weight pairs.
func nodes(pairs ...any) []spec {
	var s []spec
	for i := 0; i < len(pairs); i += 2 {
		s = append(s, spec{name: pairs[i].(string), weight: pairs[i+1].(int)})
	}
	return s
}

// picks returns the host names of k picks from c at now.
func picks(tb testing.TB, c *Cursor, u *Upstream, tried Tried, k int, now int64) []string {
	tb.Helper()
	out := make([]string, k)
	for j := range out {
		i, a := c.Pick(u, tried, nil, now)
		require.GreaterOrEqual(tb, i, 0, "pick %d", j)
		require.True(tb, a.IsValid())
		out[j] = u.Nodes[i].Host
	}
	return out
}

func count(seq []string) map[string]int {
	m := map[string]int{}
	for _, s := range seq {
		m[s]++
	}
	return m
}
