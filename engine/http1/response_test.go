package http1

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseResponseStatus(t *testing.T) {
	cases := []struct {
		name string
		in   string
		ok   bool
	}{
		{"ok", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", true},
		{"reason with spaces", "HTTP/1.1 404 Not Found Here\r\n\r\n", true},
		{"empty reason with sp", "HTTP/1.1 200 \r\n\r\n", true},
		{"no reason no sp", "HTTP/1.1 200\r\n\r\n", true},
		{"lf only", "HTTP/1.0 200 OK\nServer: x\n\n", true},
		{"obs-text reason", "HTTP/1.1 200 \xc3\xa9\r\n\r\n", true},
		{"100", "HTTP/1.1 100 Continue\r\n\r\n", true},
		{"599", "HTTP/1.1 599 X\r\n\r\n", true},
		{"te gzip chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", true},
		{"te gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", true},
		{"te gzip then chunked field", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", true},
		{"cl list same", "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n", true},

		{"http2", "HTTP/2 200 OK\r\n\r\n", false},
		{"http20", "HTTP/2.0 200 OK\r\n\r\n", false},
		{"http12", "HTTP/1.2 200 OK\r\n\r\n", false},
		{"lowercase", "http/1.1 200 OK\r\n\r\n", false},
		{"099", "HTTP/1.1 099 X\r\n\r\n", false},
		{"600", "HTTP/1.1 600 X\r\n\r\n", false},
		{"two digits", "HTTP/1.1 20 OK\r\n\r\n", false},
		{"four digits", "HTTP/1.1 2000 OK\r\n\r\n", false},
		{"letters", "HTTP/1.1 2x0 OK\r\n\r\n", false},
		{"two spaces", "HTTP/1.1  200 OK\r\n\r\n", false},
		{"tab sep", "HTTP/1.1\t200 OK\r\n\r\n", false},
		{"nul in reason", "HTTP/1.1 200 O\x00K\r\n\r\n", false},
		{"bare cr in reason", "HTTP/1.1 200 O\rK\r\n\r\n", false},
		{"garbage", "hello\r\n\r\n", false},
		{"leading crlf", "\r\nHTTP/1.1 200 OK\r\n\r\n", false},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", false},
		{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n", false},
		{"nul in value", "HTTP/1.1 200 OK\r\nX: \x00\r\n\r\n", false},
		{"bad name", "HTTP/1.1 200 OK\r\nX Y: 1\r\n\r\n", false},
		{"cl differing", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", false},
		{"cl negative", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false},
		{"cl empty", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", false},
		{"cl and te", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"te on 1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		// RFC 9112 §6.1: chunked at most once, and last
		{"te chunked gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", false},
		{"te chunked chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", false},
		{"te chunked then chunked field", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"te chunked then gzip field", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r Response
			n, err := ParseResponse(&r, []byte(c.in), nil)
			if c.ok {
				require.NoError(t, err)
				assert.Equal(t, len(c.in), n)
				assert.Equal(t, n, r.HeadLen)
				return
			}
			require.Error(t, err)
			require.NotErrorIs(t, err, ErrNeedMore)
			assert.Equal(t, 502, StatusOf(err), "%v", err)
			assert.Zero(t, n)
		})
	}
}

func TestParseResponseFields(t *testing.T) {
	in := "HTTP/1.1 201 Created Now\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: Close\r\n\r\ndata"
	var r Response
	n, err := ParseResponse(&r, []byte(in), nil)
	require.NoError(t, err)
	assert.Equal(t, strings.Index(in, "data"), n)
	assert.Equal(t, uint8(1), r.Major)
	assert.Equal(t, uint8(1), r.Minor)
	assert.Equal(t, 201, r.Status)
	assert.Equal(t, "Created Now", string(r.Reason))
	assert.True(t, r.Chunked)
	assert.True(t, r.Close)
	assert.Equal(t, int64(-1), r.ContentLength)
	assert.Equal(t, "Close", string(r.Connection))
	require.Len(t, r.Headers, 3)
	assert.Equal(t, "text/event-stream", string(r.Headers[0].Value))

	n, err = ParseResponse(&r, []byte("HTTP/1.1 200\r\n\r\n"), nil)
	require.NoError(t, err)
	assert.Equal(t, 16, n)
	assert.Empty(t, r.Reason)
	assert.Empty(t, r.Headers, "Reset drops the previous fields")
	assert.False(t, r.Chunked)
	assert.False(t, r.Close)
	assert.Nil(t, r.Connection)
}

func TestParseResponseClose(t *testing.T) {
	f := func(head string, closed bool) {
		t.Helper()
		var r Response
		_, err := ParseResponse(&r, []byte(head+"\r\n"), nil)
		require.NoError(t, err, head)
		assert.Equal(t, closed, r.Close, head)
	}
	f("HTTP/1.1 200 OK\r\n", false)
	f("HTTP/1.1 200 OK\r\nConnection: close\r\n", true)
	f("HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\n", true)
	f("HTTP/1.0 200 OK\r\n", true)
	f("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n", false)
	f("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\n", true)
}

func TestResponseBodyKind(t *testing.T) {
	f := func(head string, headReq bool, want BodyKind) {
		t.Helper()
		var r Response
		_, err := ParseResponse(&r, []byte(head+"\r\n"), nil)
		require.NoError(t, err, head)
		assert.Equal(t, want, r.BodyKind(headReq), "%q head=%v", head, headReq)
	}
	f("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", false, BodyLength)
	f("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", true, BodyNone)
	f("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", false, BodyNone)
	f("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n", false, BodyChunked)
	f("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n", true, BodyNone)
	f("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n", false, BodyChunked)
	f("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", false, BodyChunked)
	f("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n", false, BodyUntilClose)
	f("HTTP/1.1 200 OK\r\n", false, BodyUntilClose)
	f("HTTP/1.0 200 OK\r\n", false, BodyUntilClose)
	f("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n", false, BodyNone)
	f("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n", false, BodyNone)
	f("HTTP/1.1 304 Not Modified\r\n", false, BodyNone)
	f("HTTP/1.1 100 Continue\r\n", false, BodyNone)
	f("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n", false, BodyNone)
	f("HTTP/1.1 103 Early Hints\r\n", false, BodyNone)
	f("HTTP/1.1 205 Reset Content\r\nContent-Length: 0\r\n", false, BodyNone)
}

func TestParseResponseNeedMore(t *testing.T) {
	for _, h := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 200\nA: b\n\n",
	} {
		var r Response
		for i := 0; i < len(h); i++ {
			_, err := ParseResponse(&r, []byte(h[:i]), nil)
			require.ErrorIs(t, err, ErrNeedMore, "%q", h[:i])
		}
	}
}

func TestParseResponseLimits(t *testing.T) {
	lim := &Limits{MaxHead: 40, MaxHeaders: 2}
	var r Response
	_, err := ParseResponse(&r, []byte("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"), lim)
	assert.Equal(t, 502, StatusOf(err))
	assert.Contains(t, err.Error(), "too many headers")
	_, err = ParseResponse(&r, []byte("HTTP/1.1 200 OK\r\nA: "+strings.Repeat("x", 40)), lim)
	assert.Equal(t, 502, StatusOf(err))
	assert.Contains(t, err.Error(), "head too large")
}

func TestAppendResponse(t *testing.T) {
	var r Response
	_, err := ParseResponse(&r, []byte("HTTP/1.0 404\nX:  y \n\n"), nil)
	require.NoError(t, err)
	out := AppendResponse(nil, &r)
	assert.Equal(t, "HTTP/1.0 404 \r\nX: y\r\n\r\n", string(out))

	var r2 Response
	n, err := ParseResponse(&r2, out, nil)
	require.NoError(t, err)
	assert.Equal(t, len(out), n)
	assert.Equal(t, 404, r2.Status)
}
