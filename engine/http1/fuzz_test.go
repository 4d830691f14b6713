package http1

import (
	"bytes"
	"testing"
)

// The fuzz oracles (STYLE §5): no panic; n stays within buf; errors are
// ErrNeedMore or an *Error with a status the gateway may answer; a parsed
// head written back out with the Append writers parses to the same fields.
// Seeds live in testdata/fuzz/<FuzzName>/.

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(benchRequest))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, lim := range []*Limits{nil, {MaxHead: 64, MaxHeaders: 4}} {
			var r Request
			n, err := ParseRequest(&r, data, lim)
			if err != nil {
				if n != 0 {
					t.Fatalf("n = %d with %v", n, err)
				}
				if err == ErrNeedMore {
					continue
				}
				e, ok := err.(*Error)
				if !ok {
					t.Fatalf("error %T %v", err, err)
				}
				switch e.Status {
				case 400, 414, 417, 431, 501, 505:
				default:
					t.Fatalf("status %d", e.Status)
				}
				continue
			}
			if n <= 0 || n > len(data) || n != r.HeadLen {
				t.Fatalf("n = %d, HeadLen %d, len %d", n, r.HeadLen, len(data))
			}
			var p Request
			if m, err := ParseRequest(&p, data[:n], lim); m != n || err != nil {
				t.Fatalf("head alone: %d %v", m, err)
			}
			if _, err := ParseRequest(&p, data[:n-1], lim); err != ErrNeedMore {
				t.Fatalf("proper prefix: %v", err)
			}

			out := AppendRequest(nil, &r)
			var r2 Request
			big := &Limits{MaxHead: 2*len(out) + 1, MaxHeaders: len(r.Headers) + 1}
			m, err := ParseRequest(&r2, out, big)
			if err != nil || m != len(out) {
				t.Fatalf("reparse %q: %d %v", out, m, err)
			}
			sameRequest(t, &r, &r2)
		}
	})
}

func sameRequest(t *testing.T, a, b *Request) {
	t.Helper()
	eq := func(what string, x, y []byte) {
		if !bytes.Equal(x, y) || (x == nil) != (y == nil) {
			t.Fatalf("%s: %q != %q", what, x, y)
		}
	}
	eq("method", a.Method, b.Method)
	eq("target", a.Target, b.Target)
	eq("path", a.Path, b.Path)
	eq("query", a.Query, b.Query)
	eq("host", a.Host, b.Host)
	eq("connection", a.Connection, b.Connection)
	if a.Major != b.Major || a.Minor != b.Minor || a.ContentLength != b.ContentLength ||
		a.Body != b.Body || a.KeepAlive != b.KeepAlive || a.Expect100 != b.Expect100 ||
		a.Upgrade != b.Upgrade || len(a.Headers) != len(b.Headers) {
		t.Fatalf("fields differ:\n%+v\n%+v", a, b)
	}
	for i := range a.Headers {
		eq("name", a.Headers[i].Name, b.Headers[i].Name)
		eq("value", a.Headers[i].Value, b.Headers[i].Value)
	}
}

func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(benchResponse))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, lim := range []*Limits{nil, {MaxHead: 64, MaxHeaders: 4}} {
			var r Response
			n, err := ParseResponse(&r, data, lim)
			if err != nil {
				if n != 0 {
					t.Fatalf("n = %d with %v", n, err)
				}
				if err != ErrNeedMore && StatusOf(err) != 502 {
					t.Fatalf("error %v, status %d", err, StatusOf(err))
				}
				continue
			}
			if n <= 0 || n > len(data) || n != r.HeadLen {
				t.Fatalf("n = %d, HeadLen %d, len %d", n, r.HeadLen, len(data))
			}
			if r.Status < 100 || r.Status > 599 {
				t.Fatalf("status %d", r.Status)
			}
			var p Response
			if _, err := ParseResponse(&p, data[:n-1], lim); err != ErrNeedMore {
				t.Fatalf("proper prefix: %v", err)
			}

			out := AppendResponse(nil, &r)
			var r2 Response
			big := &Limits{MaxHead: 2*len(out) + 1, MaxHeaders: len(r.Headers) + 1}
			m, err := ParseResponse(&r2, out, big)
			if err != nil || m != len(out) {
				t.Fatalf("reparse %q: %d %v", out, m, err)
			}
			if r.Major != r2.Major || r.Minor != r2.Minor || r.Status != r2.Status ||
				!bytes.Equal(r.Reason, r2.Reason) || r.ContentLength != r2.ContentLength ||
				r.Chunked != r2.Chunked || r.Close != r2.Close ||
				!bytes.Equal(r.Connection, r2.Connection) || len(r.Headers) != len(r2.Headers) ||
				r.BodyKind(false) != r2.BodyKind(false) {
				t.Fatalf("fields differ:\n%+v\n%+v", r, r2)
			}
			for i := range r.Headers {
				if !bytes.Equal(r.Headers[i].Name, r2.Headers[i].Name) ||
					!bytes.Equal(r.Headers[i].Value, r2.Headers[i].Value) {
					t.Fatalf("field %d differs", i)
				}
			}
		}
	})
}

func FuzzChunked(f *testing.F) {
	f.Add([]byte(benchChunked))
	f.Add([]byte("3\r\nabc\r\n0\r\nX-Sum: 1\r\nHost: evil\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		whole := decodeChunked(t, data)
		if whole.consumed > len(data) {
			t.Fatalf("consumed %d of %d", whole.consumed, len(data))
		}
		if whole.err != nil && StatusOf(whole.err) != 400 {
			t.Fatalf("status %d", StatusOf(whole.err))
		}
		bb := byteByByte(t, data)
		if whole.payload != bb.payload || whole.done != bb.done || whole.err != bb.err ||
			whole.err == nil && whole.consumed != bb.consumed {
			t.Fatalf("one piece %+v\nbyte by byte %+v", whole, bb)
		}
		// A request body's scan is the same, only stricter on trailers,
		// and as independent of how the bytes are cut.
		req := decodeWith(t, Chunked{Request: true}, data)
		reqBB := decodeWith(t, Chunked{Request: true}, data, cutsEvery(len(data))...)
		if req.payload != reqBB.payload || req.done != reqBB.done || req.err != reqBB.err {
			t.Fatalf("request, one piece %+v\nbyte by byte %+v", req, reqBB)
		}
		if req.err == nil && req != whole || req.err != nil && req.err != ErrForbiddenTrailer && req.err != whole.err {
			t.Fatalf("request %+v\nresponse %+v", req, whole)
		}
		if len(data) > 1 {
			half := decodeChunked(t, data, len(data)/2)
			if whole.payload != half.payload || whole.done != half.done || whole.err != half.err {
				t.Fatalf("one piece %+v\nhalved %+v", whole, half)
			}
		}
		if whole.done {
			// The payload, framed again, decodes to itself.
			body, _ := chunkBody(whole.payload)
			again := decodeChunked(t, []byte(body))
			if !again.done || again.payload != whole.payload || again.consumed != len(body) {
				t.Fatalf("re-framed: %+v", again)
			}
		}
	})
}
