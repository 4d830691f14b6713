//go:build !race

package balancer

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The race detector allocates, so these run without it.

func TestPickAllocs(t *testing.T) {
	for _, k := range []Kind{RoundRobin, CHash, LeastConn, EWMA} {
		u := build(t, nil, "a", k, spec{name: "a", weight: 5, addrs: 2}, spec{name: "b", weight: 1}, spec{name: "c", weight: 1, priority: -1})
		u.Nodes[1].State.Fail(testNow)
		c := NewCursor(u)
		key := []byte("client-1")
		now := testNow
		allocs := testing.AllocsPerRun(200, func() {
			now++
			i, _ := c.Pick(u, 0, key, now)
			c.Start(i)
			c.Done(i, 1000, now)
			c.Pick(u, Tried(0).Add(0), key, now) // retry into the next group
		})
		assert.Zero(t, allocs, "kind %d", k)
	}
}

func TestStartDoneAllocs(t *testing.T) {
	u := build(t, nil, "a", EWMA, nodes("a", 1, "b", 1)...)
	c := NewCursor(u)
	assert.Zero(t, testing.AllocsPerRun(200, func() { c.Start(1) }))
	assert.Zero(t, testing.AllocsPerRun(200, func() { c.Done(1, 1000, testNow) }))
}

func TestNodeStateAllocs(t *testing.T) {
	var s NodeState
	assert.Zero(t, testing.AllocsPerRun(200, func() {
		s.Fail(testNow)
		s.Healthy(testNow)
		s.Succeed()
	}))
}

func TestUnbuiltPickAllocs(t *testing.T) {
	u := build(t, nil, "a", RoundRobin, nodes("a", 1, "b", 1)...)
	u.groups, u.rank = nil, nil // as if Build was skipped
	c := NewCursor(u)
	assert.Zero(t, testing.AllocsPerRun(200, func() { c.Pick(u, 0, nil, testNow) }))
}
