//go:build !race

package apibreaker

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAllocs: once a request's breaker exists, Access and Log allocate
// nothing, whether the breaker is closed, open, counting or resetting.
func TestAllocs(t *testing.T) {
	b := compile(t, `{"break_response_code":502,"break_response_body":"down","unhealthy":{"failures":2},"healthy":{"successes":2}}`)
	c := newCtx(t, "API.example.com:8080", "/v1/chat/completions?stream=true")
	c.UpstreamStatus = 500
	b.Log(c) // creates the breaker
	require.NotNil(t, b.store.load(key(c.Req)))

	other := newCtx(t, "gw", "/no-breaker")
	f := func(what string, fn func()) {
		t.Helper()
		assert.Zero(t, testing.AllocsPerRun(200, fn), what)
	}
	f("access, no breaker for this request", func() { b.Access(other) })
	f("log healthy, no breaker", func() { other.UpstreamStatus = 200; b.Log(other) })
	f("log status 0", func() { c.UpstreamStatus = 0; b.Log(c) })
	f("log unhealthy and access (open)", func() {
		c.UpstreamStatus = 500
		b.Log(c)
		if b.Access(c).Status != 502 {
			panic("breaker should be open")
		}
	})
	f("log healthy (reset)", func() { c.UpstreamStatus = 200; b.Log(c) })
	f("access closed", func() { b.Access(c) })
}
