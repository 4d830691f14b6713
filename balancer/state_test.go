package balancer

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNodeState(t *testing.T) {
	var s NodeState
	now := testNow
	assert.True(t, s.Healthy(now))
	s.Fail(now)
	// nginx max_fails=1: one failure takes the node out for fail_timeout.
	assert.False(t, s.Healthy(now))
	assert.False(t, s.Healthy(now+int64(FailTimeout)-1))
	assert.True(t, s.Healthy(now+int64(FailTimeout)))
	// A later failure starts over.
	later := now + int64(FailTimeout) + 5
	s.Fail(later)
	assert.False(t, s.Healthy(later+1))
	s.Succeed()
	assert.True(t, s.Healthy(later+1))
	assert.Zero(t, s.fails.Load())

	var nilState *NodeState // a node built without a registry
	nilState.Fail(now)
	nilState.Succeed()
	assert.True(t, nilState.Healthy(now))
}

func TestNodeStateConcurrent(t *testing.T) {
	var s NodeState
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 1000 {
				now := testNow + int64(j)
				if g%2 == 0 {
					s.Fail(now)
				} else {
					s.Succeed()
				}
				s.Healthy(now)
			}
		}()
	}
	wg.Wait()
}

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	a := r.State("upstreams/1", "10.0.0.1:80")
	assert.Same(t, a, r.State("upstreams/1", "10.0.0.1:80"))
	assert.NotSame(t, a, r.State("upstreams/1", "10.0.0.2:80"))
	assert.NotSame(t, a, r.State("upstreams/2", "10.0.0.1:80"))
	r.State("routes/r1/upstream", "10.0.0.1:80")
	assert.Equal(t, 4, r.Len())

	a.Fail(testNow)
	r.Prune(map[string]struct{}{"upstreams/1": {}, "routes/r1/upstream": {}})
	assert.Equal(t, 3, r.Len())
	assert.Same(t, a, r.State("upstreams/1", "10.0.0.1:80"), "kept, with its health")
	assert.False(t, r.State("upstreams/1", "10.0.0.1:80").Healthy(testNow))
	assert.Equal(t, 3, r.Len())
	r.Prune(nil)
	assert.Zero(t, r.Len())
	assert.NotSame(t, a, r.State("upstreams/1", "10.0.0.1:80"))
}

func TestRegistryConcurrent(t *testing.T) {
	r := NewRegistry()
	var wg sync.WaitGroup
	got := make([]*NodeState, 8)
	for g := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[g] = r.State("u", "n:80")
		}()
	}
	wg.Wait()
	for _, s := range got {
		assert.Same(t, got[0], s)
	}
}
