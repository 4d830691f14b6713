package balancer

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func hashPick(t *testing.T, c *Cursor, u *Upstream, tried Tried, key string) string {
	t.Helper()
	i, a := c.Pick(u, tried, []byte(key), testNow)
	require.GreaterOrEqual(t, i, 0, key)
	require.True(t, a.IsValid())
	return u.Nodes[i].Host
}

func TestCHashSticky(t *testing.T) {
	u := build(t, nil, "ch", CHash, nodes("a", 1, "b", 1, "c", 1)...)
	c1, c2 := NewCursor(u), NewCursor(u)
	for j := range 100 {
		k := "client-" + strconv.Itoa(j)
		h := hashPick(t, c1, u, 0, k)
		assert.Equal(t, h, hashPick(t, c1, u, 0, k), k)
		assert.Equal(t, h, hashPick(t, c2, u, 0, k), "another loop, same node: %s", k)
	}
	// An empty key is a key like any other.
	assert.Equal(t, hashPick(t, c1, u, 0, ""), hashPick(t, c2, u, 0, ""))
	i, _ := c1.Pick(u, 0, nil, testNow)
	assert.Equal(t, hashPick(t, c1, u, 0, ""), u.Nodes[i].Host)
}

func TestCHashDistribution(t *testing.T) {
	u := build(t, nil, "ch", CHash, nodes("10.0.0.1", 1, "10.0.0.2", 1, "10.0.0.3", 1)...)
	c := NewCursor(u)
	got := map[string]int{}
	for j := range 30000 {
		got[hashPick(t, c, u, 0, "user-"+strconv.Itoa(j))]++
	}
	for h, n := range got {
		assert.InDelta(t, 10000, n, 1000, "%s: %v", h, got)
	}
	assert.Len(t, got, 3)

	t.Run("weighted", func(t *testing.T) {
		u := build(t, nil, "ch", CHash, nodes("10.0.0.1", 3, "10.0.0.2", 1)...)
		c := NewCursor(u)
		got := map[string]int{}
		for j := range 40000 {
			got[hashPick(t, c, u, 0, "user-"+strconv.Itoa(j))]++
		}
		assert.InDelta(t, 30000, got["10.0.0.1"], 3000, "%v", got)
	})
}

func TestCHashRemoveNode(t *testing.T) {
	reg := NewRegistry()
	u3 := build(t, reg, "ch", CHash, nodes("10.0.0.1", 1, "10.0.0.2", 1, "10.0.0.3", 1)...)
	u2 := build(t, reg, "ch", CHash, nodes("10.0.0.1", 1, "10.0.0.3", 1)...)
	c3, c2 := NewCursor(u3), NewCursor(u2)
	kept, others, moved := 0, 0, 0
	for j := range 30000 {
		k := "user-" + strconv.Itoa(j)
		before := hashPick(t, c3, u3, 0, k)
		after := hashPick(t, c2, u2, 0, k)
		if before == "10.0.0.2" {
			moved++
			continue
		}
		others++
		if before == after {
			kept++
		}
	}
	assert.GreaterOrEqual(t, kept*100, others*90, "kept %d of %d", kept, others)
	assert.Positive(t, moved)

	// A node that fails, or was tried, is skipped the same way: its keys
	// move on clockwise and the others stay.
	for j := range 3000 {
		k := "user-" + strconv.Itoa(j)
		before := hashPick(t, c3, u3, 0, k)
		retry := hashPick(t, c3, u3, Tried(0).Add(1), k)
		assert.NotEqual(t, "10.0.0.2", retry)
		if before != "10.0.0.2" {
			assert.Equal(t, before, retry, k)
		}
	}
}

func TestCHashRingDeterministic(t *testing.T) {
	a := build(t, nil, "ch", CHash, nodes("x", 2, "y", 1, "zero", 0)...)
	b := build(t, nil, "ch", CHash, nodes("x", 2, "y", 1, "zero", 0)...)
	require.Len(t, a.ring, 3*PointsPerWeight)
	assert.Equal(t, a.ring, b.ring)
	for j := 1; j < len(a.ring); j++ {
		require.LessOrEqual(t, a.ring[j-1].hash, a.ring[j].hash)
	}
	for _, p := range a.ring {
		assert.NotEqual(t, "zero", a.Nodes[p.node].Host)
	}
	// Other kinds build no ring.
	assert.Nil(t, build(t, nil, "rr", RoundRobin, nodes("x", 1)...).ring)
}

func TestCHashRingCap(t *testing.T) {
	points := func(u *Upstream) map[string]int {
		n := map[string]int{}
		for _, p := range u.ring {
			n[u.Nodes[p.node].Host]++
		}
		return n
	}
	// 160 × 10001 is over the cap: points are scaled in proportion.
	u := build(t, nil, "ch", CHash, nodes("big", 10000, "small", 1)...)
	assert.LessOrEqual(t, len(u.ring), MaxRingPoints)
	assert.Equal(t, map[string]int{"big": 10000 * MaxRingPoints / 10001, "small": MaxRingPoints / 10001}, points(u))
	// A weight too small for its share still gets one point.
	u = build(t, nil, "ch", CHash, nodes("big", 1<<22, "small", 1)...)
	assert.Equal(t, map[string]int{"big": MaxRingPoints - 1, "small": 1}, points(u))
}

func TestSearch(t *testing.T) {
	ring := []ringPoint{{hash: 10}, {hash: 20}, {hash: 20}, {hash: 30}}
	f := func(h uint64, want int) {
		t.Helper()
		assert.Equal(t, want, search(ring, h), h)
	}
	f(0, 0)
	f(10, 0)
	f(11, 1)
	f(20, 1)
	f(30, 3)
	f(31, 0) // wraps
}
