package balancer

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// MaxWeight bounds a node weight so that the pickers' integer arithmetic
// (weight sums, least_conn cross products) cannot overflow.
const MaxWeight = math.MaxInt32

// Build finishes u after its fields are set: it validates the nodes and the
// scheme, stable-sorts Nodes by Priority (highest first, config order kept
// within a priority, as APISIX's priority.lua), fills a zero Port (80 / 443
// by scheme) and an empty HostHeader, and builds the chash ring. An empty
// Scheme means "http" (APISIX's default). It runs on the builder goroutine,
// never on a loop, and allocates freely; after it returns u is immutable.
// Errors read "balancer: upstream <Key>: ...".
func (u *Upstream) Build() error {
	switch u.Scheme {
	case "":
		u.Scheme = "http"
	case "http", "https":
	default:
		return u.errorf("scheme %q: want http or https", u.Scheme)
	}
	if u.Kind > EWMA {
		return u.errorf("unknown balancer type %d", u.Kind)
	}
	if len(u.Nodes) == 0 {
		return u.errorf("no nodes")
	}
	def := 80
	if u.Scheme == "https" {
		def = 443
	}
	for i := range u.Nodes {
		n := &u.Nodes[i]
		if n.Host == "" {
			return u.errorf("node %d: empty host", i)
		}
		if n.Port == 0 {
			n.Port = def
		}
		if n.Port < 1 || n.Port > 65535 {
			return u.errorf("node %s: port %d out of range", n.key(), n.Port)
		}
		if n.Weight < 0 || n.Weight > MaxWeight {
			return u.errorf("node %s: weight %d: want 0..%d", n.key(), n.Weight, MaxWeight)
		}
		if len(n.Addrs) == 0 {
			return u.errorf("node %s: no resolved address", n.key())
		}
		for _, a := range n.Addrs {
			if !a.IsValid() {
				return u.errorf("node %s: invalid address", n.key())
			}
		}
		if n.HostHeader == nil {
			n.HostHeader = appendHostHeader(nil, n.Host, n.Port, def)
		}
	}
	// APISIX priority.lua: higher priority first; stable keeps config order.
	slices.SortStableFunc(u.Nodes, func(a, b Node) int { return cmp.Compare(b.Priority, a.Priority) })
	u.groups = u.groups[:0]
	for i := range u.Nodes {
		if i == 0 || u.Nodes[i].Priority != u.Nodes[i-1].Priority {
			u.groups = append(u.groups, int32(i))
		}
	}
	u.groups = append(u.groups, int32(len(u.Nodes)))
	// Smooth WRR breaks ties by host:port, not by position, so a cursor
	// carried to a generation that lists the same nodes in another order
	// (a JSON object's keys, say) continues exactly where it was.
	order := make([]int32, len(u.Nodes))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int {
		x, y := &u.Nodes[a], &u.Nodes[b]
		if c := strings.Compare(x.Host, y.Host); c != 0 {
			return c
		}
		return cmp.Compare(x.Port, y.Port)
	})
	u.rank = make([]int32, len(u.Nodes))
	for r, i := range order {
		u.rank[i] = int32(r)
	}
	u.ring = nil
	if u.Kind == CHash {
		u.ring = buildRing(u.Nodes)
	}
	return nil
}

func (u *Upstream) errorf(format string, args ...any) error {
	return fmt.Errorf("balancer: upstream %s: "+format, append([]any{u.Key}, args...)...)
}

// key is the node's identity across generations: "host:port".
func (n *Node) key() string { return n.Host + ":" + strconv.Itoa(n.Port) }

// appendHostHeader appends host, with ":port" unless port is the scheme's
// default, bracketing an IPv6 literal (APISIX parse_server_for_upstream_host).
func appendHostHeader(dst []byte, host string, port, def int) []byte {
	v6 := strings.IndexByte(host, ':') >= 0 && !strings.HasPrefix(host, "[")
	if v6 {
		dst = append(dst, '[')
	}
	dst = append(dst, host...)
	if v6 {
		dst = append(dst, ']')
	}
	if port != def {
		dst = append(dst, ':')
		dst = strconv.AppendInt(dst, int64(port), 10)
	}
	return dst
}
