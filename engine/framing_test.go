package engine

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	_ "github.com/sluice-gw/sluice/plugin/all" // proxy-rewrite (alloc_test.go, which also imports it, is left out under -race)
)

// seenRequest is what a recording upstream read: the raw head, the path
// and the head's fields as sent, and the body.
type seenRequest struct {
	head   string
	path   string
	header textproto.MIMEHeader
	body   string
}

// recordingUpstream answers every request with "ok" and reports each one
// it read on the returned channel.
func recordingUpstream(t *testing.T) (string, <-chan seenRequest) {
	seen := make(chan seenRequest, 16)
	addr := acceptEach(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			var head strings.Builder // the head as sent (net/http merges repeated fields)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				head.WriteString(line)
				if line == "\r\n" {
					break
				}
			}
			req, err := http.ReadRequest(bufio.NewReader(io.MultiReader(strings.NewReader(head.String()), r)))
			if err != nil {
				return
			}
			b, _ := io.ReadAll(req.Body)
			h := textproto.MIMEHeader(req.Header.Clone())
			if len(req.TransferEncoding) > 0 { // net/http moves it out of Header
				h["Transfer-Encoding"] = req.TransferEncoding
			}
			raw, _, _ := strings.Cut(req.RequestURI, "?") // the path as sent
			seen <- seenRequest{head: head.String(), path: raw, header: h, body: string(b)}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	return addr, seen
}

// next is the next request a recording upstream read, failing the test
// when none comes within 2 s.
func next(t *testing.T, seen <-chan seenRequest) seenRequest {
	t.Helper()
	select {
	case r := <-seen:
		return r
	case <-time.After(2 * time.Second):
		t.Fatal("the upstream read no request")
		return seenRequest{}
	}
}

// TestFramingNotNominable: a Connection field naming Content-Length or
// Transfer-Encoding must not strip the framing the upstream reads the body
// with — otherwise the body becomes a second request that skipped routing
// and plugins (request smuggling). The upstream gets one request, framed
// as sluice parsed it, and several Content-Length fields arrive as one.
func TestFramingNotNominable(t *testing.T) {
	up, seen := recordingUpstream(t)
	g := startTestGateway(t, 1, snapshot(routeTo("r", "/*", up)))
	smuggled := "GET /admin HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, tc := range []struct{ name, req, wantBody string }{
		{"connection names content-length",
			fmt.Sprintf("POST /a HTTP/1.1\r\nHost: x\r\nConnection: content-length\r\nContent-Length: %d\r\n\r\n%s", len(smuggled), smuggled), smuggled},
		{"connection names transfer-encoding",
			fmt.Sprintf("POST /a HTTP/1.1\r\nHost: x\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(smuggled), smuggled), smuggled},
		{"repeated content-length",
			"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nhi", "hi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := roundTrip(t, g.addr, tc.req)
			assert.Equal(t, 200, resp.StatusCode)
			got := next(t, seen)
			assert.Equal(t, "/a", got.path)
			assert.Equal(t, tc.wantBody, got.body)
			assert.LessOrEqual(t, strings.Count(strings.ToLower(got.head), "\r\ncontent-length:"), 1, "one Content-Length: %q", got.head)
			select {
			case extra := <-seen:
				t.Fatalf("the upstream read a second request: %s", extra.path)
			case <-time.After(200 * time.Millisecond):
			}
		})
	}
}

// TestSeveralConnectionFields: every Connection field's tokens name
// hop-by-hop fields, not only the last one's.
func TestSeveralConnectionFields(t *testing.T) {
	up, seen := recordingUpstream(t)
	g := startTestGateway(t, 1, snapshot(routeTo("r", "/*", up)))
	c := dialSend(t, g.addr, "GET /a HTTP/1.1\r\nHost: x\r\nConnection: X-Secret\r\nConnection: keep-alive\r\nX-Secret: 1\r\nX-Kept: 2\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	got := next(t, seen)
	assert.Empty(t, got.header.Get("X-Secret"), "a field the first Connection field names was forwarded")
	assert.Equal(t, "2", got.header.Get("X-Kept"))
}

// TestResponseFramingNotNominable: an upstream response whose Connection
// field names Content-Length still reaches the client with its length, so
// the client (or a proxy in front) knows where it ends and the next begins.
func TestResponseFramingNotNominable(t *testing.T) {
	up := serveRequests(t, func(c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 5\r\n\r\nhello")
		return true
	})
	g := startTestGateway(t, 1, snapshot(routeTo("r", "/*", up)))
	c := dialSend(t, g.addr, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for i := 0; i < 2; i++ {
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err, "response %d", i)
		assert.EqualValues(t, 5, resp.ContentLength, "response %d", i)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, "hello", string(b))
	}
}

// TestPathNormalized: routes match, and the upstream receives, the path as
// the upstream will read it, so a permissive route cannot be used to reach
// what another route guards (/public/../admin, /%61dmin); a dot segment
// behind an encoded slash or above the root is a 400. Routes match the
// decoded path, as APISIX's $uri.
func TestPathNormalized(t *testing.T) {
	pub, pubSeen := recordingUpstream(t)
	adm, admSeen := recordingUpstream(t)
	g := startTestGateway(t, 1, snapshot(routeTo("pub", "/public/*", pub), routeTo("adm", "/admin/*", adm),
		routeTo("adm2", "/ädmin b/*", adm)))
	for _, tc := range []struct {
		target, want string
		admin        bool
		status       int
	}{
		{"/public/a", "/public/a", false, 200},
		{"/public/../admin/x?q=1", "/admin/x", true, 200},
		{"/public/%2e%2E/admin/x", "/admin/x", true, 200},
		{"/%61dmin/x", "/admin/x", true, 200},
		{"/public//a/./b", "/public/a/b", false, 200},
		// an encoded separator routes as '/' (APISIX's decoded $uri) and
		// goes upstream as sent
		{"/admin%2Fx", "/admin%2Fx", true, 200},
		{"/admin%5cx", "/admin%5cx", true, 200},
		// so does any encoded byte: a route written with UTF-8 or a space
		// matches the encoded request path
		{"/%C3%A4dmin%20b/x", "/%C3%A4dmin%20b/x", true, 200},
		{"/public/..%2Fadmin/x", "", false, 400},
		{"/../admin/x", "", false, 400},
		{"/admin%00/x", "", false, 400}, // a NUL, and a '%' that starts no escape: 400, as nginx
		{"/public/a%2", "", false, 400},
	} {
		resp := roundTrip(t, g.addr, "GET "+tc.target+" HTTP/1.1\r\nHost: x\r\n\r\n")
		assert.Equal(t, tc.status, resp.StatusCode, tc.target)
		if tc.status != 200 {
			continue
		}
		seen := pubSeen
		if tc.admin {
			seen = admSeen
		}
		select {
		case got := <-seen:
			assert.Equal(t, tc.want, got.path, tc.target)
		case <-time.After(2 * time.Second):
			t.Fatalf("%s: not at the expected upstream", tc.target)
		}
	}
}

// TestHTTP10ClientAndCodedChunks: an HTTP/1.0 client gets a chunked body
// de-chunked; a transfer coding under the chunks (gzip) could not be
// told to it, so that answer is a 502 rather than unlabelled gzip bytes.
func TestHTTP10ClientAndCodedChunks(t *testing.T) {
	up := acceptEach(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(r)
			if err != nil {
				return
			}
			te := "chunked"
			if req.URL.Path == "/gz" {
				te = "gzip, chunked"
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: "+te+"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
		}
	})
	g := startTestGateway(t, 1, snapshot(routeTo("r", "/*", up)))
	for _, tc := range []struct {
		path, body string
		status     int
	}{{"/plain", "hello", 200}, {"/gz", "", 502}} {
		resp := roundTrip(t, g.addr, "GET "+tc.path+" HTTP/1.0\r\nHost: x\r\n\r\n")
		assert.Equal(t, tc.status, resp.StatusCode, tc.path)
		b, _ := io.ReadAll(resp.Body)
		if tc.status == 200 {
			assert.Equal(t, tc.body, string(b), tc.path)
			assert.Empty(t, resp.TransferEncoding, "de-chunked for the HTTP/1.0 client")
			assert.True(t, resp.Close, "and the connection closed after it")
		}
	}
}

// TestRewritePath: a configured rewrite path goes upstream as written,
// "//" kept, as APISIX sends it: a literal proxy-rewrite uri, a
// traffic-split arm's uri, and one built from request values
// ("/v1/models/$arg_model/chat"), which dot segments in those values
// cannot steer out of its prefix (400).
func TestRewritePath(t *testing.T) {
	up, seen := recordingUpstream(t)
	lit := routeTo("lit", "/lit", up)
	lit.Plugins = map[string]json.RawMessage{"proxy-rewrite": json.RawMessage(`{"uri":"/v1//chat"}`)}
	built := routeTo("built", "/built", up)
	built.Plugins = map[string]json.RawMessage{"proxy-rewrite": json.RawMessage(`{"uri":"/v1//m/$arg_model/$arg_none/x"}`)}
	models := routeTo("m", "/models", up)
	models.Plugins = map[string]json.RawMessage{"proxy-rewrite": json.RawMessage(`{"uri":"/v1/models/$arg_model/chat"}`)}
	arm := routeTo("arm", "/arm", up)
	arm.Plugins = map[string]json.RawMessage{"traffic-split": json.RawMessage(`{"rules":[{"weighted_upstreams":[
		{"weight":1,"upstream":{"nodes":{"` + up + `":1}},"rewrite":{"uri":"/v2//chat"}}]}]}`)}
	g := startTestGateway(t, 1, snapshot(lit, built, models, arm))
	for _, tc := range []struct{ target, want string }{ // want "": 400
		{"/lit", "/v1//chat"},
		{"/built?model=gpt-4o", "/v1//m/gpt-4o//x"},
		{"/arm", "/v2//chat"},
		{"/models?model=gpt-4o", "/v1/models/gpt-4o/chat"},
		{"/models?model=../../admin", ""},
		{"/models?model=..", ""},
		{"/models?model=%2e%2e", ""},
		{"/models?model=a%2F..%2F..%2Fadmin", ""},
	} {
		resp := roundTrip(t, g.addr, "GET "+tc.target+" HTTP/1.1\r\nHost: x\r\n\r\n")
		if tc.want == "" {
			assert.Equal(t, 400, resp.StatusCode, tc.target)
			continue
		}
		require.Equal(t, 200, resp.StatusCode, tc.target)
		assert.Equal(t, tc.want, next(t, seen).path, tc.target)
	}
}

// Trailers pass both ways with the Trailer field that announces them
// (end to end, RFC 9110 §6.6.2); a request trailer that belongs in the
// header section (Host, Authorization, X-Forwarded-For...) is a 400, and
// the upstream never gets it whole: an upstream merging trailers into the
// header section would read values the gateway never checked.
func TestTrailers(t *testing.T) {
	type got struct{ announced, trailer, body string }
	seen := make(chan got, 4)
	up := acceptEach(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(r)
			if err != nil {
				return
			}
			b, err := io.ReadAll(req.Body)
			if err != nil {
				seen <- got{body: "error: " + err.Error()}
				return
			}
			var announced []string // net/http moves the Trailer field into req.Trailer's keys
			for k := range req.Trailer {
				announced = append(announced, k)
			}
			seen <- got{strings.Join(announced, ","), req.Trailer.Get("X-Checksum") + req.Trailer.Get("Host"), string(b)}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"+
				"2\r\nok\r\n0\r\nX-Sum: abc\r\n\r\n")
		}
	})
	g := startTestGateway(t, 1, snapshot(routeTo("1", "/up", up)))

	c := dialSend(t, g.addr, "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"+
		"3\r\nabc\r\n0\r\nX-Checksum: 42\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	require.NoError(t, err)
	_, announced := resp.Trailer["X-Sum"] // net/http moves the Trailer field here
	assert.True(t, announced, "the response's Trailer field")
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "ok", string(b))
	assert.Equal(t, "abc", resp.Trailer.Get("X-Sum"), "the response's trailer")
	select {
	case s := <-seen:
		assert.Equal(t, got{"X-Checksum", "42", "abc"}, s, "the request's Trailer field and trailer")
	case <-time.After(2 * time.Second):
		t.Fatal("the upstream read no request")
	}

	_, err = io.WriteString(c, "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"3\r\nabc\r\n0\r\nHost: evil\r\n\r\n")
	require.NoError(t, err)
	resp, err = http.ReadResponse(r, nil)
	require.NoError(t, err)
	assert.Equal(t, 400, resp.StatusCode)
	select {
	case s := <-seen:
		assert.NotEqual(t, "evil", s.trailer, "the upstream must not get the forbidden trailer")
		assert.Contains(t, s.body, "error", "the upstream sees a cut body")
	case <-time.After(2 * time.Second): // or nothing at all
	}
}

// TestNoFramingOn204: a 204 reaches the client without the upstream's
// Content-Length or Transfer-Encoding (RFC 9110 §8.6, RFC 9112 §6.1: a
// server must not send them on a 204), and the connection serves the next
// request.
func TestNoFramingOn204(t *testing.T) {
	up := acceptEach(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(r)
			if err != nil {
				return
			}
			switch req.URL.Path {
			case "/cl":
				io.WriteString(c, "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nX-A: 1\r\n\r\n")
			case "/te":
				io.WriteString(c, "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n")
			default:
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
		}
	})
	g := startTestGateway(t, 1, snapshot(routeTo("r", "/*", up)))
	for _, path := range []string{"/cl", "/te"} {
		c := dialSend(t, g.addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		tp := textproto.NewReader(bufio.NewReader(c))
		line, err := tp.ReadLine()
		require.NoError(t, err, path)
		assert.Equal(t, "HTTP/1.1 204 No Content", line, path)
		h, err := tp.ReadMIMEHeader()
		require.NoError(t, err, path)
		assert.Equal(t, "1", h.Get("X-A"), path)
		assert.NotContains(t, h, "Content-Length", path)
		assert.NotContains(t, h, "Transfer-Encoding", path)

		_, err = io.WriteString(c, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err, path)
		line, err = tp.ReadLine()
		require.NoError(t, err, path)
		assert.Equal(t, "HTTP/1.1 200 OK", line, path, "the next response follows the 204's head")
	}
}

// TestXForwardedForJoined: the client's X-Forwarded-For fields all reach
// the upstream, joined with ", " in order before the client address, as
// nginx's $proxy_add_x_forwarded_for (APISIX) sends them — not only the
// last field's value.
func TestXForwardedForJoined(t *testing.T) {
	up, seen := recordingUpstream(t)
	g := startTestGateway(t, 1, snapshot(routeTo("r", "/*", up)))
	for _, tc := range []struct{ fields, want string }{
		{"", "127.0.0.1"},
		{"X-Forwarded-For: 1.1.1.1\r\n", "1.1.1.1, 127.0.0.1"},
		{"X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\n", "1.1.1.1, 2.2.2.2, 127.0.0.1"},
		{"x-forwarded-for: 1.1.1.1, 3.3.3.3\r\nX-Kept: 1\r\nX-FORWARDED-FOR:\r\nX-Forwarded-For: 2.2.2.2\r\n", "1.1.1.1, 3.3.3.3, 2.2.2.2, 127.0.0.1"},
	} {
		resp := roundTrip(t, g.addr, "GET /a HTTP/1.1\r\nHost: x\r\n"+tc.fields+"\r\n")
		require.Equal(t, 200, resp.StatusCode, tc.fields)
		got := next(t, seen)
		assert.Equal(t, []string{tc.want}, got.header["X-Forwarded-For"], "one field: %q", got.head)
	}
}

// TestXForwardedHostIsHost: X-Forwarded-Host is nginx's $host, as APISIX
// sends it — the Host lowercased and without its port — not the raw value.
func TestXForwardedHostIsHost(t *testing.T) {
	up, seen := recordingUpstream(t)
	g := startTestGateway(t, 1, snapshot(routeTo("r", "/*", up)))
	for _, tc := range []struct{ req, want string }{
		{"GET /a HTTP/1.1\r\nHost: API.Example.COM:8443\r\n\r\n", "api.example.com"},
		{"GET /a HTTP/1.1\r\nHost: api.example.com\r\n\r\n", "api.example.com"},
		{"GET /a HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", "[::1]"},
		{"GET http://Abs.Example:81/a HTTP/1.1\r\nHost: other\r\n\r\n", "abs.example"},
	} {
		resp := roundTrip(t, g.addr, tc.req)
		require.Equal(t, 200, resp.StatusCode, tc.req)
		got := next(t, seen)
		assert.Equal(t, []string{tc.want}, got.header["X-Forwarded-Host"], tc.req)
	}
}

// TestRequestLineTooLong: a request line longer than the head limit gets
// 414 with a JSON error_msg and Connection: close (RFC 9112 §3, as nginx
// answers); a long field after a short request line still gets 431.
func TestRequestLineTooLong(t *testing.T) {
	up, _ := recordingUpstream(t)
	g := startTestGateway(t, 1, snapshot(routeTo("r", "/*", up)))
	long := strings.Repeat("a", 40<<10)
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"long target", "GET /" + long + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
		{"long target, line unfinished", "GET /" + long, 414},
		{"long field", "GET /a HTTP/1.1\r\nHost: x\r\nX-Big: " + long + "\r\n\r\n", 431},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := roundTrip(t, g.addr, tc.req)
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.True(t, resp.Close, "Connection: close")
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var body struct {
				Msg string `json:"error_msg"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			assert.NotEmpty(t, body.Msg)
		})
	}
}

// TestTransferCodings: chunked must be the final transfer coding and come
// once (RFC 9112 §6.1), so an upstream head breaking that is a 502 for
// any client. An HTTP/1.0 client knows no transfer codings: only a lone
// chunked (de-chunked for it) can reach it, and any other coding — under
// the chunks or over a close-delimited body — is a 502 rather than bytes
// it would take as content. An HTTP/1.1 client gets the codings relayed.
func TestTransferCodings(t *testing.T) {
	up := acceptEach(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(r)
			if err != nil {
				return
			}
			te := strings.ReplaceAll(strings.TrimPrefix(req.URL.Path, "/"), "-", ", ")
			if te == "gzip" { // close-delimited
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b-not-really")
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: "+te+"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
		}
	})
	g := startTestGateway(t, 1, snapshot(routeTo("r", "/*", up)))
	for _, tc := range []struct {
		path, version string
		status        int
		te            string // relayed Transfer-Encoding
	}{
		{"/gzip", "1.0", 502, ""},
		{"/gzip-chunked", "1.0", 502, ""},
		{"/chunked-gzip", "1.0", 502, ""},
		{"/chunked-chunked", "1.0", 502, ""},
		{"/chunked", "1.0", 200, ""},
		{"/chunked-gzip", "1.1", 502, ""},
		{"/chunked-chunked", "1.1", 502, ""},
		{"/gzip", "1.1", 200, "gzip"},
		{"/gzip-chunked", "1.1", 200, "gzip, chunked"},
	} {
		name := tc.path + " HTTP/" + tc.version
		c := dialSend(t, g.addr, "GET "+tc.path+" HTTP/"+tc.version+"\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		tp := textproto.NewReader(bufio.NewReader(c)) // net/http refuses codings other than chunked
		line, err := tp.ReadLine()
		require.NoError(t, err, name)
		h, err := tp.ReadMIMEHeader()
		require.NoError(t, err, name)
		assert.Equal(t, fmt.Sprintf("HTTP/1.1 %d %s", tc.status, statusText(tc.status)), line, name)
		assert.Equal(t, tc.te, h.Get("Transfer-Encoding"), name)
	}
}

// Variables read the path as routes match it, decoded once (APISIX's
// $uri everywhere): a traffic-split rule on uri sees "/v/a b" for
// /v/a%20b, as the route's own vars do, while the upstream gets the path
// as sent.
func TestURIVariableDecoded(t *testing.T) {
	def, defSeen := recordingUpstream(t)
	arm, armSeen := recordingUpstream(t)
	r := routeTo("v", "/v/*", def)
	r.Vars = json.RawMessage(`[["uri","==","/v/a b"]]`)
	r.Plugins = map[string]json.RawMessage{"traffic-split": json.RawMessage(`{"rules":[{"match":[{"vars":[["uri","==","/v/a b"]]}],
		"weighted_upstreams":[{"weight":1,"upstream":{"nodes":{"` + arm + `":1}}}]}]}`)}
	g := startTestGateway(t, 1, snapshot(r))
	resp := roundTrip(t, g.addr, "GET /v/a%20b HTTP/1.1\r\nHost: x\r\n\r\n")
	require.Equal(t, 200, resp.StatusCode, "the route's vars read the decoded path")
	select {
	case got := <-armSeen:
		assert.Equal(t, "/v/a%20b", got.path, "sent as it came")
	case <-defSeen:
		t.Fatal("the split rule's vars read the encoded path")
	case <-time.After(2 * time.Second):
		t.Fatal("no upstream got the request")
	}
}

// An answer the gateway writes itself (a 404, an error, a plugin's) to a
// HEAD request carries its length but no body: the next response on the
// connection must not start with a stray body.
func TestHeadAnswersHaveNoBody(t *testing.T) {
	up, _ := recordingUpstream(t)
	dead := routeTo("dead", "/dead", "127.0.0.1:1") // connect refused: 502
	g := startTestGateway(t, 1, snapshot(routeTo("r", "/ok", up), dead))
	// with a global rule a 404 is a plugin-chain answer (appendResult)
	snap := snapshot(routeTo("r", "/ok", up))
	snap.GlobalRules["g"] = json.RawMessage(`{"plugins":{"limit-count":{"count":100,"time_window":60}}}`)
	gr := startTestGateway(t, 1, snap)
	for _, tc := range []struct{ addr, path string }{{g.addr, "/nope"}, {g.addr, "/dead"}, {gr.addr, "/nope"}} {
		path := tc.path
		c := dialSend(t, tc.addr, "HEAD "+path+" HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: "HEAD"})
		require.NoError(t, err, path)
		assert.NotEqual(t, 200, resp.StatusCode, path)
		assert.Positive(t, resp.ContentLength, "%s: its length is given", path)
		resp, err = http.ReadResponse(br, nil)
		require.NoError(t, err, "%s: the next response follows the head", path)
		assert.Equal(t, 200, resp.StatusCode, path)
		c.Close()
	}
}
