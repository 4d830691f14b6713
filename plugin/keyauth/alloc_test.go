//go:build !race

package keyauth

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRewriteAllocs: the success paths (key in the header, in the query,
// with hide_credentials) and the failures do not allocate once the Ctx's
// HeaderOps and Scratch have grown (the engine recycles Ctx).
func TestRewriteAllocs(t *testing.T) {
	f := func(conf, head string, status int) {
		t.Helper()
		k := compile(t, conf)
		c := newCtx(t, head)
		req := c.Req
		run := func() {
			c.Reset()
			c.Req = req
			if k.Rewrite(c).Status != status {
				t.Fatalf("%s: unexpected status", head)
			}
		}
		run() // grow HeaderOps and Scratch
		require.Equal(t, status, k.Rewrite(c).Status)
		assert.Zero(t, testing.AllocsPerRun(200, run), head)
	}
	f(`{}`, "GET / HTTP/1.1\r\nHost: a\r\napikey: auth-one", 0)
	f(`{}`, "GET /?apikey=auth-two HTTP/1.1\r\nHost: a", 0)
	f(`{"hide_credentials":true}`, "GET / HTTP/1.1\r\nHost: a\r\napikey: auth-one", 0)
	f(`{"hide_credentials":true}`, "GET /?a=1&apikey=auth-two&b=2 HTTP/1.1\r\nHost: a", 0)
	f(`{}`, "GET / HTTP/1.1\r\nHost: a\r\napikey: wrong", 401)
	f(`{}`, "GET / HTTP/1.1\r\nHost: a", 401)
}
