//go:build !race

package prometheus

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sluice-gw/sluice/plugin"
)

// TestLogAllocs: once a label set and status code have been seen, Log
// does not allocate (route and global-rule instances, with a consumer, a
// split arm, a node the route's upstream does not have).
func TestLogAllocs(t *testing.T) {
	route := compile(t, `{}`, &plugin.Env{RouteID: "alloc-1", Scope: "route alloc-1",
		RouteUpstream: upstream("routes/alloc-1/upstream", "127.0.0.1:1980")})
	global := compile(t, `{}`, &plugin.Env{Global: true, Scope: "global_rules alloc"})
	f := func(p *inst, c *plugin.Ctx) {
		t.Helper()
		p.Log(c) // first sight: creates the series
		assert.Zero(t, testing.AllocsPerRun(200, func() { p.Log(c) }))
	}
	c := ctx("alloc-1", "127.0.0.1:1980", 200)
	c.PromptTokens, c.CompletionTokens = 3, 4
	f(route, c)
	c = ctx("alloc-1", "192.0.2.1:80", 503)
	c.Consumer = "jack"
	c.Arm = &plugin.Arm{Name: "a"}
	f(route, c)
	f(global, ctx("alloc-g", "127.0.0.1:1980", 200))
}
