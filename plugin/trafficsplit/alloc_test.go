//go:build !race

package trafficsplit_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestAccessLogAllocs: picking an arm, rewriting and counting it allocate
// nothing per request.
func TestAccessLogAllocs(t *testing.T) {
	f := newFixture(t, 1)
	f.mustBuild(split(`[{"match":[{"vars":[["http_x_canary","!","==","0"]]}],"weighted_upstreams":[
		{"upstream_id":"u1","weight":80,"rewrite":{"uri":"/v1/x","headers":{"X-Arm":"a"}}},{"weight":20}]}]`))
	r := newReq(t, "/x?q=1", "X-Canary: 1")
	rt := f.tbl.Match(r.rr)
	c := &r.c
	for range 10 { // warm: status counters are created on first use
		f.send(r, 0)
		c.Status, c.End = 200, 5e6
		for _, l := range rt.Chain.Log {
			l.Log(c)
		}
	}
	allocs := testing.AllocsPerRun(200, func() {
		c.Reset()
		c.Req, c.Match, c.Loop = r.rr.Request, r.rr, 0
		for i := range rt.Chain.Pre {
			rt.Chain.Pre[i].Run(c)
		}
		c.Status, c.End, c.FirstByte, c.PromptTokens, c.CompletionTokens = 200, 5e6, 1e6, 10, 20
		for _, l := range rt.Chain.Log {
			l.Log(c)
		}
	})
	assert.Zero(t, allocs)
}
