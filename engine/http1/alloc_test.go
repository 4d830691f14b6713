//go:build !race

package http1

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// STYLE §5: the parsers and helpers run per request on an event loop and
// must not allocate. The race detector allocates, hence the build tag.

func TestParseRequestAllocs(t *testing.T) {
	buf := []byte(benchRequest)
	r := Request{Headers: make([]Header, 0, DefaultMaxHeaders)}
	lim := &Limits{}
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := ParseRequest(&r, buf, lim); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)

	// Errors are package-level values: returning one does not allocate.
	bad := []byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
	allocs = testing.AllocsPerRun(200, func() {
		if _, err := ParseRequest(&r, bad, nil); StatusOf(err) != 400 {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
	allocs = testing.AllocsPerRun(200, func() {
		if _, err := ParseRequest(&r, buf[:100], nil); err != ErrNeedMore {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}

func TestParseResponseAllocs(t *testing.T) {
	buf := []byte(benchResponse)
	r := Response{Headers: make([]Header, 0, DefaultMaxHeaders)}
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := ParseResponse(&r, buf, nil); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
	bad := []byte("HTTP/1.1 200 OK\r\nX : y\r\n\r\n")
	allocs = testing.AllocsPerRun(200, func() {
		if _, err := ParseResponse(&r, bad, nil); err == nil {
			t.Fatal("no error")
		}
	})
	assert.Zero(t, allocs)
}

func TestChunkedAllocs(t *testing.T) {
	body := []byte(benchChunked)
	var c Chunked
	allocs := testing.AllocsPerRun(200, func() {
		c.Reset()
		for b := body; ; {
			n, _, done, err := c.Next(b)
			if err != nil {
				t.Fatal(err)
			}
			if done {
				break
			}
			b = b[n:]
		}
	})
	assert.Zero(t, allocs)
	allocs = testing.AllocsPerRun(200, func() {
		c.Reset()
		if _, _, _, err := c.Next([]byte("zz")); err == nil {
			t.Fatal("no error")
		}
	})
	assert.Zero(t, allocs)
}

func TestHelpersAllocs(t *testing.T) {
	var r Request
	_, err := ParseRequest(&r, []byte("GET /p?a=1&b=2 HTTP/1.1\r\nHost: h\r\nX-Canary: 1\r\nCookie: s=1; t=2\r\n\r\n"), nil)
	require.NoError(t, err)
	names := [][]byte{[]byte("x-canary"), []byte("x_canary"), []byte("b"), []byte("t")}
	dst := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(200, func() {
		if r.Header(names[0]) == nil || r.HeaderVar(names[1]) == nil ||
			r.Arg(names[2]) == nil || r.Cookie(names[3]) == nil {
			t.Fatal("missing")
		}
		dst = AppendRequest(dst[:0], &r)
	})
	assert.Zero(t, allocs)

	var resp Response
	_, err = ParseResponse(&resp, []byte(benchResponse), nil)
	require.NoError(t, err)
	allocs = testing.AllocsPerRun(200, func() {
		dst = AppendResponse(dst[:0], &resp)
	})
	assert.Zero(t, allocs)
}
