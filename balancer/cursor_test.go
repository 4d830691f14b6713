package balancer

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ExampleCursor_Pick() {
	reg := NewRegistry()
	u := &Upstream{Key: "upstreams/1", Kind: RoundRobin, Scheme: "http"}
	for i, host := range []string{"a", "b", "c"} {
		u.Nodes = append(u.Nodes, Node{
			Host:   host,
			Port:   80,
			Weight: []int{5, 1, 1}[i],
			Addrs:  []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(8001+i))},
			State:  reg.State(u.Key, host+":80"),
		})
	}
	if err := u.Build(); err != nil {
		panic(err)
	}
	c := NewCursor(u)
	now := time.Now().UnixNano()
	var seq []string
	for range 7 {
		i, _ := c.Pick(u, 0, nil, now)
		seq = append(seq, u.Nodes[i].Host)
	}
	fmt.Println(strings.Join(seq, " "))
	// Output: a a b a c a a
}

// assertWindows checks that every window of sum(weights) consecutive picks
// holds each node exactly weight times.
func assertWindows(t *testing.T, seq []string, weights map[string]int) {
	t.Helper()
	size := 0
	for _, w := range weights {
		size += w
	}
	require.GreaterOrEqual(t, len(seq), size)
	for st := 0; st+size <= len(seq); st++ {
		if !assert.Equal(t, weights, count(seq[st:st+size]), "window at %d", st) {
			return
		}
	}
}

func TestSWRRExact(t *testing.T) {
	t.Run("1:1", func(t *testing.T) {
		u := build(t, nil, "u", RoundRobin, nodes("a", 1, "b", 1)...)
		seq := picks(t, NewCursor(u), u, 0, 100, testNow)
		assert.Equal(t, map[string]int{"a": 50, "b": 50}, count(seq))
		assertWindows(t, seq, map[string]int{"a": 1, "b": 1})
	})
	t.Run("80:20", func(t *testing.T) {
		u := build(t, nil, "u", RoundRobin, nodes("a", 80, "b", 20)...)
		seq := picks(t, NewCursor(u), u, 0, 1000, testNow)
		assert.Equal(t, map[string]int{"a": 800, "b": 200}, count(seq))
		assertWindows(t, seq, map[string]int{"a": 80, "b": 20})
	})
	t.Run("3:2:1", func(t *testing.T) {
		u := build(t, nil, "u", RoundRobin, nodes("a", 3, "b", 2, "c", 1)...)
		seq := picks(t, NewCursor(u), u, 0, 600, testNow)
		assertWindows(t, seq, map[string]int{"a": 3, "b": 2, "c": 1})
	})
	t.Run("smooth", func(t *testing.T) {
		u := build(t, nil, "u", RoundRobin, nodes("a", 2, "b", 1)...)
		// nginx: a b a, not APISIX's interleaved a a b.
		assert.Equal(t, []string{"a", "b", "a", "a", "b", "a"}, picks(t, NewCursor(u), u, 0, 6, testNow))
	})
}

func TestCarry(t *testing.T) {
	reg := NewRegistry()
	t.Run("same nodes continue", func(t *testing.T) {
		u1 := build(t, reg, "u", RoundRobin, nodes("a", 5, "b", 1, "c", 1)...)
		c1 := NewCursor(u1)
		assert.Equal(t, []string{"a", "a", "b"}, picks(t, c1, u1, 0, 3, testNow))
		// The next generation lists the nodes in another order.
		u2 := build(t, reg, "u", RoundRobin, nodes("c", 1, "a", 5, "b", 1)...)
		c2 := NewCursor(u2)
		c2.Carry(c1, u1, u2)
		// A reset would start over with a a b.
		seq := picks(t, c2, u2, 0, 4+70, testNow)
		assert.Equal(t, []string{"a", "c", "a", "a"}, seq[:4])
		assertWindows(t, seq, map[string]int{"a": 5, "b": 1, "c": 1})
	})
	t.Run("node added", func(t *testing.T) {
		u1 := build(t, reg, "u", RoundRobin, nodes("a", 5, "b", 1, "c", 1)...)
		c1 := NewCursor(u1)
		picks(t, c1, u1, 0, 3, testNow)
		u2 := build(t, reg, "u", RoundRobin, nodes("a", 5, "b", 1, "c", 1, "d", 1)...)
		c2 := NewCursor(u2)
		c2.Carry(c1, u1, u2)
		seq := picks(t, c2, u2, 0, 80, testNow)
		// The weights a, b and c kept are exact from the first window on.
		assertWindows(t, seq, map[string]int{"a": 5, "b": 1, "c": 1, "d": 1})
	})
	t.Run("weight changed", func(t *testing.T) {
		u1 := build(t, reg, "u", RoundRobin, nodes("a", 2, "b", 1)...)
		c1 := NewCursor(u1)
		assert.Equal(t, []string{"a"}, picks(t, c1, u1, 0, 1, testNow))
		u2 := build(t, reg, "u", RoundRobin, nodes("a", 2, "b", 2)...)
		c2 := NewCursor(u2)
		c2.Carry(c1, u1, u2)
		// Carried: a=-1+2, b=1+2, so b; a reset cursor would pick a.
		fresh := NewCursor(u2)
		assert.Equal(t, []string{"a"}, picks(t, fresh, u2, 0, 1, testNow))
		seq := picks(t, c2, u2, 0, 40, testNow)
		assert.Equal(t, "b", seq[0])
		assertWindows(t, seq, map[string]int{"a": 2, "b": 2})
	})
	t.Run("state moves", func(t *testing.T) {
		u1 := build(t, reg, "e", EWMA, nodes("a", 1, "b", 1)...)
		c1 := NewCursor(u1)
		c1.Start(1)
		c1.Start(0)
		c1.Done(0, int64(time.Millisecond), testNow)
		u2 := build(t, reg, "e", EWMA, nodes("b", 1, "a", 1)...)
		c2 := NewCursor(u2)
		c2.Carry(c1, u1, u2)
		// in-flight counts stay with c1, where their Done lands
		assert.Equal(t, int32(0), c2.s[0].active) // b
		assert.InDelta(t, float64(time.Millisecond), c2.s[1].ewma, 1)
		c2.Start(0)
		c2.Carry(nil, u1, u2) // no-op
		assert.Equal(t, int32(1), c2.s[0].active)
	})
	t.Run("large lists", func(t *testing.T) {
		var s1, s2 []spec
		for i := range 40 {
			s1 = append(s1, spec{name: fmt.Sprintf("n%d", i), weight: 1 + i%3})
			s2 = append(s2, spec{name: fmt.Sprintf("n%d", 39-i), weight: 1 + (39-i)%3})
		}
		u1 := build(t, reg, "big", RoundRobin, s1...)
		u2 := build(t, reg, "big", RoundRobin, s2...)
		c1 := NewCursor(u1)
		picks(t, c1, u1, 0, 17, testNow)
		c2 := NewCursor(u2)
		c2.Carry(c1, u1, u2) // 40×40 nodes: the map path
		for i := range u2.Nodes {
			assert.Equal(t, c1.s[39-i].current, c2.s[i].current, u2.Nodes[i].Host)
		}
		want := map[string]int{}
		for _, s := range s1 {
			want[s.name] = s.weight
		}
		assertWindows(t, picks(t, c2, u2, 0, 200, testNow), want)
	})
}

func TestPriority(t *testing.T) {
	reg := NewRegistry()
	// Config order puts the backup first; Build sorts it last.
	u := build(t, reg, "p", RoundRobin,
		spec{name: "backup", weight: 1, priority: -1},
		spec{name: "h1", weight: 1, priority: 1},
		spec{name: "lo", weight: 1},
		spec{name: "h2", weight: 1, priority: 1},
	)
	require.Equal(t, []string{"h1", "h2", "lo", "backup"}, hosts(u))
	c := NewCursor(u)
	now := testNow

	assert.Equal(t, map[string]int{"h1": 5, "h2": 5}, count(picks(t, c, u, 0, 10, now)))
	u.Nodes[0].State.Fail(now)
	assert.Equal(t, map[string]int{"h2": 10}, count(picks(t, c, u, 0, 10, now)))
	// Both high nodes tried: the next group serves the retry.
	assert.Equal(t, map[string]int{"lo": 3}, count(picks(t, c, u, Tried(0).Add(1), 3, now)))
	u.Nodes[1].State.Fail(now)
	assert.Equal(t, map[string]int{"lo": 10}, count(picks(t, c, u, 0, 10, now)))
	u.Nodes[2].State.Fail(now)
	assert.Equal(t, map[string]int{"backup": 10}, count(picks(t, c, u, 0, 10, now)))
	u.Nodes[3].State.Fail(now)
	// All down: APISIX uses them all; priority still orders them.
	assert.Equal(t, map[string]int{"h1": 5, "h2": 5}, count(picks(t, c, u, 0, 10, now)))
	assert.Equal(t, map[string]int{"lo": 3}, count(picks(t, c, u, Tried(0).Add(0).Add(1), 3, now)))
	// After the fail timeout the high group is back.
	later := now + int64(FailTimeout)
	assert.Equal(t, map[string]int{"h1": 5, "h2": 5}, count(picks(t, c, u, 0, 10, later)))
}

func hosts(u *Upstream) []string {
	var s []string
	for _, n := range u.Nodes {
		s = append(s, n.Host)
	}
	return s
}

func TestTried(t *testing.T) {
	u := build(t, nil, "t", RoundRobin, nodes("a", 1, "b", 1, "c", 1)...)
	c := NewCursor(u)
	var tried Tried
	seen := map[int]bool{}
	for range 3 {
		i, _ := c.Pick(u, tried, nil, testNow)
		require.GreaterOrEqual(t, i, 0)
		assert.False(t, seen[i], "node %d picked twice", i)
		seen[i] = true
		tried = tried.Add(i)
	}
	i, a := c.Pick(u, tried, nil, testNow)
	assert.Equal(t, -1, i)
	assert.False(t, a.IsValid())

	assert.True(t, Tried(0).Add(3).Has(3))
	assert.False(t, Tried(0).Add(3).Has(2))
	assert.Equal(t, Tried(0), Tried(0).Add(64).Add(-1))
	assert.False(t, Tried(^uint64(0)).Has(64))
}

func TestTriedBeyond64(t *testing.T) {
	var s []spec
	for i := range 66 {
		s = append(s, spec{name: fmt.Sprintf("n%02d", i), weight: 1})
	}
	u := build(t, nil, "t", RoundRobin, s...)
	c := NewCursor(u)
	// Every node below 64 tried: only 64 and 65 are left, and never run out.
	got := count(picks(t, c, u, Tried(^uint64(0)), 10, testNow))
	assert.Equal(t, map[string]int{"n64": 5, "n65": 5}, got)
}

func TestHealth(t *testing.T) {
	u := build(t, nil, "h", RoundRobin, nodes("a", 1, "b", 1, "c", 1)...)
	c := NewCursor(u)
	now := testNow
	u.Nodes[1].State.Fail(now)
	assert.Equal(t, map[string]int{"a": 5, "c": 5}, count(picks(t, c, u, 0, 10, now)))
	assert.Equal(t, map[string]int{"a": 5, "c": 5}, count(picks(t, c, u, 0, 10, now+int64(FailTimeout)-1)))
	// Back after the fail timeout.
	seq := picks(t, c, u, 0, 30, now+int64(FailTimeout))
	assertWindows(t, seq, map[string]int{"a": 1, "b": 1, "c": 1})

	// All failed: all are used.
	for i := range u.Nodes {
		u.Nodes[i].State.Fail(now)
	}
	assertWindows(t, picks(t, c, u, 0, 30, now+1), map[string]int{"a": 1, "b": 1, "c": 1})
	// The one unhealthy untried node is used rather than none.
	i, _ := c.Pick(u, Tried(0).Add(0).Add(2), nil, now+1)
	assert.Equal(t, 1, i)

	// Succeed clears at once.
	for i := range u.Nodes {
		u.Nodes[i].State.Succeed()
	}
	u.Nodes[0].State.Fail(now)
	u.Nodes[0].State.Succeed()
	assert.True(t, u.Nodes[0].State.Healthy(now))
}

func TestZeroWeight(t *testing.T) {
	u := build(t, nil, "z", RoundRobin, nodes("a", 1, "zero", 0, "b", 1)...)
	c := NewCursor(u)
	assert.Equal(t, map[string]int{"a": 50, "b": 50}, count(picks(t, c, u, 0, 100, testNow)))
	// Only the zero node is left: nothing.
	i, _ := c.Pick(u, Tried(0).Add(0).Add(2), nil, testNow)
	assert.Equal(t, -1, i)
	// Not even when the others are down.
	u.Nodes[0].State.Fail(testNow)
	u.Nodes[2].State.Fail(testNow)
	assert.Equal(t, map[string]int{"a": 5, "b": 5}, count(picks(t, c, u, 0, 10, testNow)))

	for _, k := range []Kind{CHash, LeastConn, EWMA} {
		u := build(t, nil, "z", k, nodes("a", 1, "zero", 0)...)
		c := NewCursor(u)
		for j := range 50 {
			i, _ := c.Pick(u, 0, fmt.Appendf(nil, "key%d", j), testNow)
			require.Equal(t, 0, i, "kind %d", k)
		}
	}
}

func TestSingleNodeZeroWeight(t *testing.T) {
	for _, k := range []Kind{RoundRobin, CHash, LeastConn, EWMA} {
		u := build(t, nil, "s", k, nodes("only", 0)...)
		c := NewCursor(u)
		for range 3 {
			i, a := c.Pick(u, 0, []byte("k"), testNow)
			assert.Equal(t, 0, i, "kind %d", k)
			assert.True(t, a.IsValid())
		}
		u.Nodes[0].State.Fail(testNow)
		i, _ := c.Pick(u, 0, nil, testNow) // down, but the only one
		assert.Equal(t, 0, i)
		i, _ = c.Pick(u, Tried(0).Add(0), nil, testNow)
		assert.Equal(t, -1, i)
	}
}

func TestLeastConn(t *testing.T) {
	u := build(t, nil, "lc", LeastConn, nodes("a", 1, "b", 1)...)
	c := NewCursor(u)
	c.Start(0)
	c.Start(0)
	for range 2 { // 2:0, then 2:1
		i, _ := c.Pick(u, 0, nil, testNow)
		require.Equal(t, 1, i)
		c.Start(i)
	}
	// 2:2: even again, so they alternate.
	seq := picks(t, c, u, 0, 10, testNow)
	assert.Equal(t, map[string]int{"a": 5, "b": 5}, count(seq))

	// Done never goes below 0.
	for range 5 {
		c.Done(1, 0, testNow)
	}
	c.Done(7, 0, testNow) // out of range: ignored
	c.Start(-1)
	assert.Equal(t, int32(0), c.s[1].active)
	i, _ := c.Pick(u, 0, nil, testNow)
	assert.Equal(t, 1, i)

	t.Run("weighted", func(t *testing.T) {
		u := build(t, nil, "lc", LeastConn, nodes("a", 2, "b", 1)...)
		c := NewCursor(u)
		// Idle: equal load, so smooth WRR by weight.
		assertWindows(t, picks(t, c, u, 0, 30, testNow), map[string]int{"a": 2, "b": 1})
		// In flight a:2 b:1 is equal load per weight; a:3 is more.
		c.Start(0)
		c.Start(0)
		c.Start(0)
		c.Start(1)
		i, _ := c.Pick(u, 0, nil, testNow)
		assert.Equal(t, 1, i)
	})
}

func TestEWMA(t *testing.T) {
	u := build(t, nil, "e", EWMA, nodes("fast", 1, "slow", 1, "new", 1)...)
	c := NewCursor(u)
	now := testNow
	lat := map[string]time.Duration{"fast": time.Millisecond, "slow": 50 * time.Millisecond, "new": time.Millisecond}
	// Unseen nodes score 0, so each gets tried first.
	first := map[string]int{}
	got := map[string]int{}
	for j := range 1000 {
		i, _ := c.Pick(u, 0, nil, now)
		require.GreaterOrEqual(t, i, 0)
		h := u.Nodes[i].Host
		if j < 3 {
			first[h]++
		}
		got[h]++
		c.Start(i)
		now += int64(lat[h])
		c.Done(i, int64(lat[h]), now)
	}
	assert.Equal(t, map[string]int{"fast": 1, "slow": 1, "new": 1}, first)
	assert.Less(t, got["slow"], 20, "%v", got)
	assert.Greater(t, got["fast"], 400, "%v", got)
	assert.Greater(t, got["new"], 400, "%v", got)

	// A slow node's score decays: after a long quiet spell it is tried again.
	c2 := NewCursor(u)
	c2.Done(0, int64(time.Millisecond), now)
	c2.Done(1, int64(50*time.Millisecond), now-int64(time.Minute))
	c2.Done(2, int64(time.Millisecond), now)
	i, _ := c2.Pick(u, 0, nil, now)
	assert.Equal(t, 1, i)

	// In-flight requests count: (active+1) × ewma.
	c3 := NewCursor(u)
	for i := range 3 {
		c3.Done(i, int64(10*time.Millisecond), now)
	}
	c3.Start(0)
	c3.Start(2)
	i, _ = c3.Pick(u, 0, nil, now)
	assert.Equal(t, 1, i)
}

func TestEWMADone(t *testing.T) {
	u := build(t, nil, "e", EWMA, nodes("a", 1)...)
	c := NewCursor(u)
	c.Done(0, 100, testNow)
	assert.InDelta(t, 100, c.s[0].ewma, 1e-9)
	// One decay time later the old value weighs 1/e.
	c.Done(0, 0, testNow+int64(EWMADecay))
	assert.InDelta(t, 100/2.718281828, c.s[0].ewma, 1e-3)
	c.Done(0, -5, testNow+int64(EWMADecay)) // negative latency counts as 0; Δt 0 keeps ewma
	assert.InDelta(t, 100/2.718281828, c.s[0].ewma, 1e-3)

	// Other kinds keep no ewma.
	rr := build(t, nil, "r", RoundRobin, nodes("a", 1)...)
	cr := NewCursor(rr)
	cr.Done(0, 100, testNow)
	assert.False(t, cr.s[0].seen)
}

func TestAddressRotation(t *testing.T) {
	u := build(t, nil, "a", RoundRobin, spec{name: "multi", weight: 1, addrs: 3}, spec{name: "one", weight: 1})
	c := NewCursor(u)
	var got []string
	for range 6 {
		i, a := c.Pick(u, Tried(0).Add(1), nil, testNow)
		require.Equal(t, 0, i)
		got = append(got, a.String())
	}
	assert.Equal(t, []string{
		"127.0.0.1:8001", "127.0.0.1:8002", "127.0.0.1:8003",
		"127.0.0.1:8001", "127.0.0.1:8002", "127.0.0.1:8003",
	}, got)
	// Each cursor (event loop) rotates on its own.
	_, a := NewCursor(u).Pick(u, Tried(0).Add(1), nil, testNow)
	assert.Equal(t, "127.0.0.1:8001", a.String())

	// The carried index survives a node losing addresses.
	u2 := build(t, nil, "a", RoundRobin, spec{name: "multi", weight: 1}, spec{name: "one", weight: 1})
	c2 := NewCursor(u2)
	c.Pick(u, Tried(0).Add(1), nil, testNow)
	c2.Carry(c, u, u2)
	i, a := c2.Pick(u2, Tried(0).Add(1), nil, testNow)
	assert.Equal(t, 0, i)
	assert.Equal(t, "127.0.0.1:8001", a.String())
}

func TestCursorGrows(t *testing.T) {
	small := build(t, nil, "g", RoundRobin, nodes("a", 1)...)
	big := build(t, nil, "g", RoundRobin, nodes("a", 1, "b", 1)...)
	c := NewCursor(small)
	assert.Equal(t, map[string]int{"a": 2, "b": 2}, count(picks(t, c, big, 0, 4, testNow)))
}

func TestEmptyUpstream(t *testing.T) {
	u := &Upstream{Key: "e"}
	i, a := NewCursor(u).Pick(u, 0, nil, testNow)
	assert.Equal(t, -1, i)
	assert.False(t, a.IsValid())
}

// Abandon uncounts a request without folding a latency into the EWMA.
func TestEWMAAbandon(t *testing.T) {
	u := build(t, nil, "e", EWMA, nodes("a", 1)...)
	c := NewCursor(u)
	c.Start(0)
	c.Done(0, 100, testNow)
	c.Start(0)
	require.EqualValues(t, 1, c.s[0].active)
	c.Abandon(0)
	assert.EqualValues(t, 0, c.s[0].active)
	assert.EqualValues(t, 100, c.s[0].ewma, "no sample taken")
	assert.EqualValues(t, testNow, c.s[0].ewmaAt)
	c.Abandon(0) // never below 0
	c.Abandon(7) // out of range: ignored
	assert.EqualValues(t, 0, c.s[0].active)
}
