package http1

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parseReq parses in with default limits and fails the test on ErrNeedMore.
func parseReq(t *testing.T, in string) (*Request, int, error) {
	t.Helper()
	var r Request
	n, err := ParseRequest(&r, []byte(in), nil)
	require.NotErrorIs(t, err, ErrNeedMore, "%q", in)
	return &r, n, err
}

func TestParseRequestStatus(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		status int // 0: parses
	}{
		// valid
		{"get", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"lf only", "GET / HTTP/1.1\nHost: a\n\n", 0},
		{"mixed line ends", "GET / HTTP/1.1\r\nHost: a\n\r\n", 0},
		{"leading crlf", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"leading lf", "\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"http10 no host", "GET / HTTP/1.0\r\n\r\n", 0},
		{"method underscore dash", "M-SEARCH_X / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"method 20", "ABCDEFGHIJKLMNOPQRST / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"options star", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"absolute no host field", "GET http://a.example/x HTTP/1.1\r\n\r\n", 0},
		{"absolute https upper", "GET HTTPS://a.example:8443 HTTP/1.1\r\n\r\n", 0},
		{"obs-text in target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"obs-text in value", "GET / HTTP/1.1\r\nHost: a\r\nX: \xc3\xa9\r\n\r\n", 0},
		{"tab in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\r\n\r\n", 0},
		{"empty value", "GET / HTTP/1.1\r\nHost: a\r\nX:\r\n\r\n", 0},
		{"empty host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 0},
		{"ipv6 host", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", 0},
		{"cl list same", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 0},
		{"cl repeated same", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 0},
		{"cl leading zeros", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 005\r\n\r\n", 0},
		{"cl 18 digits", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\n", 0},
		{"te chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 0},
		{"te chunked upper ows", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:   CHUNKED \t\r\n\r\n", 0},
		{"expect 100", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n", 0},
		{"expect on 1.0 ignored", "POST / HTTP/1.0\r\nExpect: foo\r\n\r\n", 0},

		// request line
		{"lowercase method", "get / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"method 21", "ABCDEFGHIJKLMNOPQRSTU / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"method digit", "G3T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"two spaces after method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"two spaces before version", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"tab separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
		{"no version", "GET /\r\nHost: a\r\n\r\n", 400},
		{"method only", "GET\r\n\r\n", 400},
		{"http09", "GET /\r\n\r\n", 400},
		{"fragment", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"ctl in target", "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"del in target", "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"nul in target", "GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"relative target", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"authority form", "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", 400},
		{"star not options", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"ftp scheme", "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"absolute empty authority", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"absolute userinfo", "GET http://u@a/x HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"http2", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"http3", "GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505},
		{"http12", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 400},
		{"http0", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 400},
		{"lowercase version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400},
		{"long version", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400},
		{"bare cr in request line", "GET / HTTP/1.1\rHost: a\r\n\r\n", 400},
		{"bare cr in target", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"bare cr leading", "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},

		// fields
		{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
		{"tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400},
		{"obs-fold host", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400},
		{"obs-fold continuation", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", 400},
		{"obs-fold tab", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n", 400},
		{"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400},
		{"no colon", "GET / HTTP/1.1\r\nHost: a\r\nXb\r\n\r\n", 400},
		{"bad name byte", "GET / HTTP/1.1\r\nHost: a\r\nX(b): c\r\n\r\n", 400},
		{"nul in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400},
		{"ctl in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x1bb\r\n\r\n", 400},
		{"del in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", 400},
		{"nul in long value", "GET / HTTP/1.1\r\nHost: a\r\nX: aaaaaaaaaaaa\x00aaaaaaaaaaa\r\n\r\n", 400},
		{"bare cr in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400},
		{"bare cr ends value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\r\n\r\n", 400},
		{"bare cr in name", "GET / HTTP/1.1\r\nHost: a\r\nX\r: a\r\n\r\n", 400},
		{"bare cr as empty line", "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", 400},

		// Host
		{"missing host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
		{"host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
		{"host with at", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400},
		{"two hosts with absolute", "GET http://a/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},

		// Content-Length
		{"cl differing", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
		{"cl list differing", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", 400},
		{"cl negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
		{"cl plus", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400},
		{"cl empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400},
		{"cl empty element", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n", 400},
		{"cl hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", 400},
		{"cl inner space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", 400},
		{"cl 19 digits", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000000000\r\n\r\n", 400},
		{"cl decimal", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5.0\r\n\r\n", 400},

		// Transfer-Encoding
		{"cl and te", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"te and cl", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400},
		{"cl 0 and te", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"te on 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 501},
		{"chunkedx", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedx\r\n\r\n", 501},
		{"chunked with param", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", 501},
		{"gzip chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"chunked chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 501},
		{"two te fields", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
		{"te gzip field then chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
		{"identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 501},
		{"te empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 400},
		{"te trailing comma", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n", 400},
		{"te space before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", 400},
		{"te obs-fold", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", 400},
		{"te vertical tab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n", 400},
		{"te nul", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\x00\r\n\r\n", 400},

		// Expect
		{"expect other", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417},
		{"expect empty", "POST / HTTP/1.1\r\nHost: a\r\nExpect:\r\n\r\n", 417},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, n, err := parseReq(t, c.in)
			if c.status == 0 {
				require.NoError(t, err)
				assert.Equal(t, len(c.in), n)
				assert.Equal(t, n, r.HeadLen)
				return
			}
			require.Error(t, err)
			assert.Equal(t, c.status, StatusOf(err), "%v", err)
			assert.Zero(t, n)
			var e *Error
			assert.ErrorAs(t, err, &e)
		})
	}
}

func TestParseRequestFields(t *testing.T) {
	in := "POST /v1/chat/completions?model=gpt&stream HTTP/1.1\r\n" +
		"Host: api.example.com\r\n" +
		"content-length:  12 \r\n" +
		"Connection: keep-alive, X-Hop\r\n" +
		"X-Empty:\r\n\r\nBODY"
	r, n, err := parseReq(t, in)
	require.NoError(t, err)
	assert.Equal(t, strings.Index(in, "BODY"), n)
	assert.Equal(t, "POST", string(r.Method))
	assert.Equal(t, "/v1/chat/completions?model=gpt&stream", string(r.Target))
	assert.Equal(t, "/v1/chat/completions", string(r.Path))
	assert.Equal(t, "model=gpt&stream", string(r.Query))
	assert.Equal(t, uint8(1), r.Major)
	assert.Equal(t, uint8(1), r.Minor)
	assert.Equal(t, "api.example.com", string(r.Host))
	assert.Equal(t, int64(12), r.ContentLength)
	assert.Equal(t, BodyLength, r.Body)
	assert.True(t, r.KeepAlive)
	assert.False(t, r.Upgrade)
	assert.False(t, r.Expect100)
	assert.Equal(t, "keep-alive, X-Hop", string(r.Connection))
	require.Len(t, r.Headers, 4)
	assert.Equal(t, "content-length", string(r.Headers[1].Name))
	assert.Equal(t, "12", string(r.Headers[1].Value))
	assert.NotNil(t, r.Headers[3].Value)
	assert.Empty(t, r.Headers[3].Value)
}

func TestParseRequestTargetForms(t *testing.T) {
	f := func(target, path, query string, queryNil bool, host string) {
		t.Helper()
		r, _, err := parseReq(t, "GET "+target+" HTTP/1.1\r\nHost: h\r\n\r\n")
		require.NoError(t, err, target)
		assert.Equal(t, target, string(r.Target))
		assert.Equal(t, path, string(r.Path), target)
		assert.Equal(t, query, string(r.Query), target)
		assert.Equal(t, queryNil, r.Query == nil, target)
		assert.Equal(t, host, string(r.Host), target)
	}
	f("/", "/", "", true, "h")
	f("/a?", "/a", "", false, "h")
	f("/a?b=1?c", "/a", "b=1?c", false, "h")
	f("/a/b%20c", "/a/b%20c", "", true, "h")
	f("http://up.example", "/", "", true, "up.example")
	f("http://up.example?x=1", "/", "x=1", false, "up.example")
	f("Http://up.example:81/p/q?x", "/p/q", "x", false, "up.example:81")
	f("https://[::1]:8443/p", "/p", "", true, "[::1]:8443")

	r, _, err := parseReq(t, "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")
	require.NoError(t, err)
	assert.Equal(t, "*", string(r.Path))
	assert.Nil(t, r.Query)
}

func TestParseRequestConnection(t *testing.T) {
	f := func(version, fields string, keepAlive, upgrade bool) {
		t.Helper()
		r, _, err := parseReq(t, "GET / "+version+"\r\nHost: h\r\n"+fields+"\r\n")
		require.NoError(t, err, fields)
		assert.Equal(t, keepAlive, r.KeepAlive, "%s %q", version, fields)
		assert.Equal(t, upgrade, r.Upgrade, "%s %q", version, fields)
	}
	f("HTTP/1.1", "", true, false)
	f("HTTP/1.0", "", false, false)
	f("HTTP/1.1", "Connection: close\r\n", false, false)
	f("HTTP/1.1", "Connection: Keep-Alive, CLOSE\r\n", false, false)
	f("HTTP/1.0", "Connection: keep-alive\r\n", true, false)
	f("HTTP/1.0", "Connection: Keep-Alive\r\nConnection: close\r\n", false, false)
	f("HTTP/1.0", "Connection: keep-alives\r\n", false, false)
	f("HTTP/1.1", "Connection: Upgrade\r\nUpgrade: websocket\r\n", true, true)
	f("HTTP/1.1", "Upgrade: websocket\r\nConnection: keep-alive,  upgrade\r\n", true, true)
	f("HTTP/1.1", "Connection: upgrade\r\n", true, false)
	f("HTTP/1.1", "Upgrade: websocket\r\n", true, false)
	f("HTTP/1.0", "Connection: upgrade\r\nUpgrade: websocket\r\n", false, false)

	r, _, err := parseReq(t, "GET / HTTP/1.1\r\nHost: h\r\nConnection: a\r\nConnection: b\r\n\r\n")
	require.NoError(t, err)
	assert.Equal(t, "b", string(r.Connection))
	r, _, err = parseReq(t, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	require.NoError(t, err)
	assert.Nil(t, r.Connection)
}

func TestParseRequestBody(t *testing.T) {
	f := func(fields string, kind BodyKind, cl int64) {
		t.Helper()
		r, _, err := parseReq(t, "POST / HTTP/1.1\r\nHost: h\r\n"+fields+"\r\n")
		require.NoError(t, err, fields)
		assert.Equal(t, kind, r.Body, fields)
		assert.Equal(t, cl, r.ContentLength, fields)
	}
	f("", BodyNone, -1)
	f("Content-Length: 0\r\n", BodyNone, 0)
	f("Content-Length: 7\r\n", BodyLength, 7)
	f("Transfer-Encoding: chunked\r\n", BodyChunked, -1)
}

func TestParseRequestExpect(t *testing.T) {
	r, _, err := parseReq(t, "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
	require.NoError(t, err)
	assert.True(t, r.Expect100)
	r, _, err = parseReq(t, "POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n")
	require.NoError(t, err)
	assert.False(t, r.Expect100)
}

func TestParseRequestPipelined(t *testing.T) {
	first := "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
	second := "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"
	buf := []byte(first + second)
	var r Request
	n, err := ParseRequest(&r, buf, nil)
	require.NoError(t, err)
	assert.Equal(t, len(first), n)
	assert.Equal(t, "/a", string(r.Path))
	n2, err := ParseRequest(&r, buf[n:], nil)
	require.NoError(t, err)
	assert.Equal(t, len(second), n2)
	assert.Equal(t, "/b", string(r.Path))
	require.Len(t, r.Headers, 2, "Reset must drop the first request's fields")
}

func TestParseRequestNeedMore(t *testing.T) {
	heads := []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"\r\n\nPOST /x?y HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nX: a\tb\r\n\r\n",
		"GET / HTTP/1.1\nHost: h\n\n",
		"GET http://h/ HTTP/1.0\r\n\r\n",
	}
	for _, h := range heads {
		var r Request
		for i := 0; i < len(h); i++ {
			n, err := ParseRequest(&r, []byte(h[:i]), nil)
			require.ErrorIs(t, err, ErrNeedMore, "%q", h[:i])
			require.Zero(t, n)
		}
		n, err := ParseRequest(&r, []byte(h), nil)
		require.NoError(t, err, h)
		assert.Equal(t, len(h), n)
	}
}

func TestParseRequestLimits(t *testing.T) {
	lim := &Limits{MaxHead: 64, MaxHeaders: 3}
	f := func(in string, want error) {
		t.Helper()
		var r Request
		_, err := ParseRequest(&r, []byte(in), lim)
		if want == nil {
			assert.NoError(t, err, in)
			return
		}
		assert.ErrorIs(t, err, want, in)
	}
	ok := "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n"
	f(ok, nil)
	f("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", ErrTooManyHeaders)
	// The fourth field is rejected before the head is complete.
	f("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n", ErrTooManyHeaders)

	exact := "GET /" + strings.Repeat("a", 64-len("GET / HTTP/1.1\r\nHost: h\r\n\r\n")) + " HTTP/1.1\r\nHost: h\r\n\r\n"
	require.Len(t, exact, 64)
	f(exact, nil)
	f(exact+"GET / HTTP/1.1\r\n", nil) // pipelined bytes do not count
	over := "GET /a" + exact[5:]
	f(over, ErrHeadTooLarge)                  // complete, 65 bytes
	f(over[:len(over)-2], ErrNeedMore)        // 63 bytes so far
	f(over[:len(over)-1], ErrNeedMore)        // 64 bytes: not over the limit yet
	f(strings.Repeat("A", 65), ErrURITooLong) // incomplete, already too long
	f(strings.Repeat("\r\n", 40), ErrHeadTooLarge)
	f(strings.Repeat("\r\n", 32), ErrNeedMore)

	// Defaults apply to a nil lim and to zero fields.
	var r Request
	big := "GET / HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("X: y\r\n", DefaultMaxHeaders) + "\r\n"
	_, err := ParseRequest(&r, []byte(big), &Limits{})
	assert.ErrorIs(t, err, ErrTooManyHeaders)
	huge := "GET /" + strings.Repeat("a", DefaultMaxHead) + " HTTP/1.1\r\nHost: h\r\n\r\n"
	_, err = ParseRequest(&r, []byte(huge), nil)
	assert.ErrorIs(t, err, ErrURITooLong)
	assert.Equal(t, 414, StatusOf(err))
}

// TestRequestLineTooLong: a request line that does not fit the head limit
// is a 414 (RFC 9112 §3, as nginx answers), not a 431; a head that is too
// large only because of its fields stays a 431.
func TestRequestLineTooLong(t *testing.T) {
	lim := &Limits{MaxHead: 64}
	f := func(in string, want error) {
		t.Helper()
		var r Request
		_, err := ParseRequest(&r, []byte(in), lim)
		assert.ErrorIs(t, err, want, in)
	}
	long := "GET /" + strings.Repeat("a", 64)
	f(long, ErrURITooLong)                                              // no end of line yet
	f(long+" HTTP/1.1\r\nHost: h\r\n\r\n", ErrURITooLong)               // whole, but the line is past the limit
	f("\r\n\r\n"+long, ErrURITooLong)                                   // after empty lines
	f(long[:60], ErrNeedMore)                                           // not over the limit yet
	f("GET / HTTP/1.1\r\nX: "+strings.Repeat("a", 64), ErrHeadTooLarge) // a field does not fit
	f("GET / HTTP/1.1\r\nHost: h\r\nX: "+strings.Repeat("a", 40)+"\r\n\r\n", ErrHeadTooLarge)
	assert.Equal(t, 414, StatusOf(ErrURITooLong))
}

func TestRequestHelpers(t *testing.T) {
	in := "GET /p?a=1&b&c=&a=2&d=x%20y&=e HTTP/1.1\r\n" +
		"Host: h\r\n" +
		"X-Canary: yes\r\n" +
		"Cookie: sid=abc; theme = dark ;flag\r\n" +
		"cookie: late=1; sid=other\r\n" +
		"Accept: */*\r\n\r\n"
	r, _, err := parseReq(t, in)
	require.NoError(t, err)

	assert.Equal(t, "yes", string(r.Header([]byte("x-canary"))))
	assert.Equal(t, "yes", string(r.Header([]byte("X-CANARY"))))
	assert.Nil(t, r.Header([]byte("x_canary")))
	assert.Nil(t, r.Header([]byte("x-canar")))
	assert.Equal(t, "h", string(r.Header([]byte("host"))))

	assert.Equal(t, "yes", string(r.HeaderVar([]byte("x_canary"))))
	assert.Equal(t, "yes", string(r.HeaderVar([]byte("X_Canary"))))
	assert.Equal(t, "*/*", string(r.HeaderVar([]byte("accept"))))
	assert.Nil(t, r.HeaderVar([]byte("x_canaryy")))

	assert.Equal(t, "1", string(r.Arg([]byte("a"))), "first occurrence")
	b := r.Arg([]byte("b"))
	assert.NotNil(t, b)
	assert.Empty(t, b)
	c := r.Arg([]byte("c"))
	assert.NotNil(t, c)
	assert.Empty(t, c)
	assert.Equal(t, "x%20y", string(r.Arg([]byte("d"))), "raw, not decoded")
	assert.Nil(t, r.Arg([]byte("z")))
	assert.Nil(t, r.Arg([]byte("A")), "exact name")

	assert.Equal(t, "abc", string(r.Cookie([]byte("sid"))))
	assert.Equal(t, "dark", string(r.Cookie([]byte("theme"))))
	assert.Equal(t, "1", string(r.Cookie([]byte("late"))))
	assert.Nil(t, r.Cookie([]byte("flag")))
	assert.Nil(t, r.Cookie([]byte("none")))

	var empty Request
	assert.Nil(t, empty.Arg([]byte("a")))
	assert.Nil(t, empty.Header([]byte("a")))
	assert.Nil(t, empty.Cookie([]byte("a")))
}

func TestRequestReset(t *testing.T) {
	var r Request
	_, err := ParseRequest(&r, []byte("POST /?q HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"), nil)
	require.NoError(t, err)
	c := cap(r.Headers)
	r.Reset()
	assert.Equal(t, Request{Headers: r.Headers, ContentLength: -1}, r)
	assert.Empty(t, r.Headers)
	assert.Equal(t, c, cap(r.Headers))
}

func TestAppendRequestRoundTrip(t *testing.T) {
	in := "\r\nPOST http://u.example/x?y=1 HTTP/1.0\nHost:  h \nConnection: keep-alive\nContent-Length: 2\n\n"
	r, _, err := parseReq(t, in)
	require.NoError(t, err)
	out := AppendRequest([]byte("prefix"), r)
	assert.Equal(t, "prefixPOST http://u.example/x?y=1 HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n", string(out))
	var r2 Request
	n, err := ParseRequest(&r2, out[len("prefix"):], nil)
	require.NoError(t, err)
	assert.Equal(t, len(out)-len("prefix"), n)
	assert.Equal(t, "u.example", string(r2.Host))
	assert.True(t, r2.KeepAlive)
	assert.Equal(t, int64(2), r2.ContentLength)
}
