package balancer

import (
	"math"
	"net/netip"
	"time"
)

// EWMADecay is the time constant with which a node's latency EWMA decays
// toward 0 while it gets no traffic (APISIX balancer/ewma.lua DECAY_TIME),
// so a node that was slow once is tried again later.
const EWMADecay = 10 * time.Second

// Cursor is one event loop's picking state for one Upstream: smooth WRR
// current weights, least_conn active counts, ewma scores, the next address
// index per node. Only its loop touches it, so it needs no lock; Pick,
// Start and Done do not allocate.
type Cursor struct {
	s    []slot // parallel to the Upstream's Nodes
	kind Kind   // Done keeps the ewma only for EWMA upstreams
}

// slot is a cursor's state for one node; one slice of them keeps a node's
// fields on one cache line and the cursor at one allocation.
type slot struct {
	current int     // nginx smooth WRR current weight
	ewma    float64 // latency EWMA in nanoseconds as of ewmaAt
	ewmaAt  int64   // unix nanos of the last ewma update
	score   float64 // scratch for the ewma picker
	active  int32   // requests in flight from this loop
	addrIdx uint32  // index of the node's next address
	seen    bool    // ewma holds at least one sample
}

// NewCursor returns a cursor sized for u (one allocation for the per-node
// state). It may be called on any goroutine; the cursor then belongs to the
// loop that uses it.
func NewCursor(u *Upstream) *Cursor {
	return &Cursor{s: make([]slot, len(u.Nodes)), kind: u.Kind}
}

// Carry copies the position from prev (a cursor of an earlier generation of
// the same Upstream.Key, built for prevUp) into c (built for u) for every
// node of u whose host:port is also in prevUp: the smooth WRR current
// weight, the ewma and the address index. So a config change does not
// reset the rotation (APISIX #4684); nodes new in u start at zero. Active
// counts do not move: requests started on prev finish with Done on prev
// (the engine keeps the cursor a request started on), so counting them on
// c too would never be undone. Nothing happens when prev or prevUp is nil. It
// must be called on c's loop before c is used, and allocates only for large
// node lists.
func (c *Cursor) Carry(prev *Cursor, prevUp, u *Upstream) {
	if prev == nil || prevUp == nil || u == nil {
		return
	}
	if len(c.s) < len(u.Nodes) {
		c.grow(len(u.Nodes))
	}
	old := prevUp.Nodes[:min(len(prevUp.Nodes), len(prev.s))]
	if len(u.Nodes)*len(old) <= 1024 {
		for i := range u.Nodes {
			n := &u.Nodes[i]
			for j := range old {
				if old[j].Port == n.Port && old[j].Host == n.Host {
					c.s[i] = prev.s[j]
					c.s[i].active = 0
					break
				}
			}
		}
		return
	}
	idx := make(map[string]int, len(old))
	for j := len(old) - 1; j >= 0; j-- { // the first of duplicates wins
		idx[old[j].key()] = j
	}
	for i := range u.Nodes {
		if j, ok := idx[u.Nodes[i].key()]; ok {
			c.s[i] = prev.s[j]
			c.s[i].active = 0
		}
	}
}

// grow resizes c for n nodes, keeping the state of the existing ones. Only
// reached when a cursor is used with a larger Upstream than it was made
// for; it allocates once.
func (c *Cursor) grow(n int) {
	s := make([]slot, n)
	copy(s, c.s)
	c.s = s
}

// Tried is a set of node indexes already tried by one request (retries):
// bit i is node i. Nodes from index 64 on are never marked.
type Tried uint64

// Add returns t with node i marked; i >= 64 is ignored.
func (t Tried) Add(i int) Tried {
	if uint(i) < 64 {
		t |= 1 << uint(i)
	}
	return t
}

// Has reports whether node i is marked in t.
func (t Tried) Has(i int) bool { return uint(i) < 64 && t&(1<<uint(i)) != 0 }

// Pick chooses a node of u for one try: among the healthy nodes of the
// highest priority group that has any (all nodes when none is healthy, as
// APISIX), skipping nodes in tried, by u.Kind; hashKey is the chash key's
// value for this request. It returns the node index and the address to
// dial, or -1 when no node is left. now is unix nanos.
//
// A node with weight 0 is never picked unless it is the upstream's only
// node (APISIX). When no untried node is healthy, health is ignored but
// priority, tried and weight still apply. The addresses of the picked node
// are used in turn. hashKey is only read during the call. Pick must be
// called on c's loop and does not allocate (unless c was made for a smaller
// Upstream; then it grows once).
func (c *Cursor) Pick(u *Upstream, tried Tried, hashKey []byte, now int64) (node int, addr netip.AddrPort) {
	n := len(u.Nodes)
	if n == 0 {
		return -1, netip.AddrPort{}
	}
	if len(c.s) < n {
		c.grow(n)
	}
	if n == 1 { // APISIX: the only node is used whatever its weight or health
		if tried&1 != 0 {
			return -1, netip.AddrPort{}
		}
		return 0, c.addr(u, 0)
	}
	health := true
	lo, hi := u.group(tried, true, now)
	if lo < 0 {
		// APISIX balancer.lua: "all upstream nodes is unhealthy, use default".
		health = false
		if lo, hi = u.group(tried, false, now); lo < 0 {
			return -1, netip.AddrPort{}
		}
	}
	i := c.pick(u, lo, hi, tried, health, hashKey, now)
	if i < 0 && health { // the group's nodes failed on other loops meanwhile
		i = c.pick(u, lo, hi, tried, false, hashKey, now)
	}
	if i < 0 {
		return -1, netip.AddrPort{}
	}
	return i, c.addr(u, i)
}

func (c *Cursor) pick(u *Upstream, lo, hi int, tried Tried, health bool, hashKey []byte, now int64) int {
	switch u.Kind {
	case CHash:
		return u.pickHash(hashKey, lo, hi, tried, health, now)
	case LeastConn:
		return c.leastConn(u, lo, hi, tried, health, now)
	case EWMA:
		return c.lowestEWMA(u, lo, hi, tried, health, now)
	default:
		return c.swrr(u, lo, hi, tried, health, now)
	}
}

// candidate reports whether node i may be picked: weight > 0, not tried,
// and healthy unless health is false.
func (u *Upstream) candidate(i int, tried Tried, health bool, now int64) bool {
	n := &u.Nodes[i]
	return n.Weight > 0 && !tried.Has(i) && (!health || n.State.Healthy(now))
}

// group returns the node range [lo, hi) of the highest priority group that
// has a candidate, or -1, -1.
func (u *Upstream) group(tried Tried, health bool, now int64) (lo, hi int) {
	g := u.groups
	if len(g) < 2 { // not built: one group
		g = []int32{0, int32(len(u.Nodes))} // does not escape
	}
	for k := 0; k+1 < len(g); k++ {
		lo, hi := int(g[k]), int(g[k+1])
		for i := lo; i < hi; i++ {
			if u.candidate(i, tried, health, now) {
				return lo, hi
			}
		}
	}
	return -1, -1
}

// swrr is nginx's smooth weighted round-robin (ngx_http_upstream_get_peer)
// over the candidates in [lo, hi): each gains its weight, the largest
// current weight wins (see wins for ties) and loses the candidates' total.
// Over any sum(weights) consecutive picks with a fixed candidate set every
// node is picked exactly weight times.
func (c *Cursor) swrr(u *Upstream, lo, hi int, tried Tried, health bool, now int64) int {
	best, total := -1, 0
	for i := lo; i < hi; i++ {
		if !u.candidate(i, tried, health, now) {
			continue
		}
		w := u.Nodes[i].Weight
		c.s[i].current += w
		total += w
		if best < 0 || u.wins(c.s[i].current, c.s[best].current, i, best) {
			best = i
		}
	}
	if best >= 0 {
		c.s[best].current -= total
	}
	return best
}

// wins reports whether node i with current weight ci beats node j with cj
// in smooth WRR: the larger current weight, on a tie the node first in
// host:port order (nginx takes the first in config order; see Build).
func (u *Upstream) wins(ci, cj, i, j int) bool {
	if ci != cj {
		return ci > cj
	}
	if len(u.rank) == len(u.Nodes) {
		return u.rank[i] < u.rank[j]
	}
	return i < j
}

// leastConn picks the candidate with the fewest active requests per unit of
// weight (active[i]/w[i], compared as cross products); equally loaded
// candidates take turns by smooth WRR, so equal load spreads by weight.
func (c *Cursor) leastConn(u *Upstream, lo, hi int, tried Tried, health bool, now int64) int {
	best := -1
	for i := lo; i < hi; i++ {
		if !u.candidate(i, tried, health, now) {
			continue
		}
		if best < 0 || int64(c.s[i].active)*int64(u.Nodes[best].Weight) < int64(c.s[best].active)*int64(u.Nodes[i].Weight) {
			best = i
		}
	}
	if best < 0 {
		return -1
	}
	ba, bw := int64(c.s[best].active), int64(u.Nodes[best].Weight)
	win, total := -1, 0
	for i := lo; i < hi; i++ {
		if !u.candidate(i, tried, health, now) {
			continue
		}
		w := u.Nodes[i].Weight
		if int64(c.s[i].active)*bw != ba*int64(w) {
			continue
		}
		c.s[i].current += w
		total += w
		if win < 0 || u.wins(c.s[i].current, c.s[win].current, i, win) {
			win = i
		}
	}
	c.s[win].current -= total
	return win
}

// lowestEWMA picks the candidate with the lowest decayed latency EWMA times
// (active+1) (APISIX balancer/ewma.lua, with a full scan instead of two
// random choices: the loop owns the state, so the scan is exact and cheap).
// Unseen nodes score 0, so each is tried; ties take turns by smooth WRR.
func (c *Cursor) lowestEWMA(u *Upstream, lo, hi int, tried Tried, health bool, now int64) int {
	best := -1
	for i := lo; i < hi; i++ {
		if !u.candidate(i, tried, health, now) {
			continue
		}
		s := &c.s[i]
		s.score = s.decayed(now) * float64(s.active+1)
		if best < 0 || s.score < c.s[best].score {
			best = i
		}
	}
	if best < 0 {
		return -1
	}
	lowest := c.s[best].score
	win, total := -1, 0
	for i := lo; i < hi; i++ {
		if !u.candidate(i, tried, health, now) || c.s[i].score != lowest {
			continue
		}
		w := u.Nodes[i].Weight
		c.s[i].current += w
		total += w
		if win < 0 || u.wins(c.s[i].current, c.s[win].current, i, win) {
			win = i
		}
	}
	if win < 0 { // a node failed between the passes
		return best
	}
	c.s[win].current -= total
	return win
}

// decayed returns the latency EWMA decayed toward 0 since its last update.
func (s *slot) decayed(now int64) float64 {
	if !s.seen {
		return 0
	}
	td := now - s.ewmaAt
	if td <= 0 {
		return s.ewma
	}
	return s.ewma * math.Exp(-float64(td)/float64(EWMADecay))
}

// addr returns node i's next address, in turn.
func (c *Cursor) addr(u *Upstream, i int) netip.AddrPort {
	as := u.Nodes[i].Addrs
	if len(as) == 0 {
		return netip.AddrPort{}
	}
	s := &c.s[i]
	k := s.addrIdx
	if k >= uint32(len(as)) { // wrapped, or the node lost addresses
		k = 0
	}
	s.addrIdx = k + 1
	return as[k]
}

// Start counts one request to node i of the Upstream c was made for as
// active (least_conn, ewma). An index out of range is ignored. It must be
// called on c's loop and does not allocate.
func (c *Cursor) Start(i int) {
	if uint(i) < uint(len(c.s)) && c.s[i].active < math.MaxInt32 {
		c.s[i].active++
	}
}

// Abandon ends the request Start counted without a latency sample: the
// exchange failed for a reason that says nothing of the node (a client
// that stopped sending its body). It must be called on c's loop.
func (c *Cursor) Abandon(i int) {
	if uint(i) < uint(len(c.s)) && c.s[i].active > 0 {
		c.s[i].active--
	}
}

// Done ends the request Start counted: it uncounts it (never below 0) and,
// for EWMA upstreams, folds latency (nanoseconds, request sent to response)
// into node i's EWMA at now (unix nanos) as APISIX's ewma.lua does:
// ewma = ewma*w + latency*(1-w) with w = exp(-Δt/EWMADecay); the first
// sample is taken as is. An index out of range is ignored. It must be
// called on c's loop and does not allocate.
func (c *Cursor) Done(i int, latency int64, now int64) {
	if uint(i) >= uint(len(c.s)) {
		return
	}
	s := &c.s[i]
	if s.active > 0 {
		s.active--
	}
	if c.kind != EWMA {
		return
	}
	lat := float64(max(latency, 0))
	if !s.seen {
		s.ewma, s.seen = lat, true
	} else {
		w := 1.0
		if td := now - s.ewmaAt; td > 0 {
			w = math.Exp(-float64(td) / float64(EWMADecay))
		}
		s.ewma = s.ewma*w + lat*(1-w)
	}
	s.ewmaAt = now
}
