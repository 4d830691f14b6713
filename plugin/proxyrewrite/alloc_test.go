//go:build !race

package proxyrewrite

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// allocs runs Rewrite on a recycled Ctx (as the engine does) and returns
// the allocations per run once HeaderOps and Scratch have grown.
func allocs(t *testing.T, js, head string) float64 {
	t.Helper()
	k := compile(t, js)
	c := newCtx(t, head)
	req, ra := c.Req, c.RemoteAddr
	run := func() {
		c.Reset()
		c.Req, c.RemoteAddr = req, ra
		if k.Rewrite(c).Status != 0 {
			t.Fatal("unexpected status")
		}
	}
	run()
	require.NotNil(t, c.Req)
	return testing.AllocsPerRun(200, run)
}

// TestRewriteAllocs: literal rewrites, variables and header edits do not
// allocate.
func TestRewriteAllocs(t *testing.T) {
	const head = "GET /v1/chat/completions?model=x HTTP/1.1\r\nHost: gw.example:8080\r\nX-Ver: 2\r\nCookie: s=1"
	for _, js := range []string{
		`{"uri":"/get"}`,
		`{"uri":"/get?from=gw"}`,
		`{"host":"upstream.example","method":"POST"}`,
		`{"uri":"/get","headers":{"set":{"X-Api-Version":"v2"},"add":{"X-A":["1","2"]},"remove":["Cookie"]}}`,
		`{"headers":{"X-Legacy":"1"}}`,
		`{"uri":"/v2$uri?h=$host&ip=$remote_addr&c=${cookie_s}"}`,
		`{"uri":"/x","headers":{"set":{"X-From":"$http_x_ver-$arg_model-$host-$remote_addr","X-Def":"${arg_none ?? d}"}}}`,
	} {
		assert.Zero(t, allocs(t, js, head), js)
	}
	// A literal uri without a client query: nothing is built at all.
	assert.Zero(t, allocs(t, `{"uri":"/get?from=gw"}`, "GET / HTTP/1.1\r\nHost: a"))
}

// TestRegexAllocs: a matching regex_uri costs one allocation, the []int
// of submatch indexes Go's regexp returns; a regex that does not match
// costs none.
func TestRegexAllocs(t *testing.T) {
	const head = "GET /api/v2/users?x=1 HTTP/1.1\r\nHost: a"
	assert.Equal(t, 1.0, allocs(t, `{"regex_uri":["^/api/(v\\d)/(.*)","/$2"],"headers":{"set":{"X-Ver":"$1"}}}`, head))
	assert.Zero(t, allocs(t, `{"regex_uri":["^/nomatch/(.*)","/$1"]}`, head))
}
