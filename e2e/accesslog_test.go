package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAccessLogCountsTheSplit: one line per request in logs/access.log
// with route, arm, upstream and the path sent upstream — the guide counts
// the split with grep, and so can a user; SIGUSR1 reopens the file after
// logrotate moved it.
func TestAccessLogCountsTheSplit(t *testing.T) {
	v1, v2 := startUpstream(t, "v1", nil), startUpstream(t, "v2", nil)
	doc := routesDoc(route("chat", "/chat/completions", fmt.Sprintf(`    plugins:
      traffic-split:
        rules:
          - weight: 50
            upstream: {type: roundrobin, nodes: {%q: 1}}
            rewrite: {uri: /v1/chat/completions}
          - weight: 50
            upstream: {type: roundrobin, nodes: {%q: 1}}
            rewrite: {uri: /v2/chat/completions}
`, v1.addr(), v2.addr()), v1.addr()))
	g := startGateway(t, 1, "", doc)
	for range 10 {
		resp, _, _ := getStatus(t, g.url("/chat/completions?stream=1"))
		require.Equal(t, 200, resp)
	}
	resp, _, _ := getStatus(t, g.url("/nowhere"))
	require.Equal(t, 404, resp)

	path := filepath.Join(g.dir, "logs", "access.log")
	var lines []string
	waitFor(t, 5*time.Second, "11 access-log lines", func() bool {
		b, _ := os.ReadFile(path)
		lines = strings.Split(strings.TrimSpace(string(b)), "\n")
		return len(lines) >= 11
	})
	require.Len(t, lines, 11)
	count := func(s string) int {
		n := 0
		for _, l := range lines {
			if strings.Contains(l, s) {
				n++
			}
		}
		return n
	}
	assert.Equal(t, 5, count(" arm=0/0 "), "the guide's grep, per arm")
	assert.Equal(t, 5, count(" arm=0/1 "))
	assert.Equal(t, 5, count(`upstream_uri="/v1/chat/completions?stream=1"`))
	assert.Equal(t, 5, count(" upstream="+v2.addr()+" "))
	assert.Equal(t, 10, count(" route=chat "))
	assert.Equal(t, 10, count(" status=200 "))
	assert.Equal(t, 1, count(" status=404 "))
	line := lines[0]
	for _, re := range []string{`^time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z `, ` client=127\.0\.0\.1:\d+ `, ` method=GET `,
		` path="/chat/completions\?stream=1" `, ` bytes=\d+ `, ` request_time=\d+\.\d{3} `, ` upstream_status=200 `, ` upstream_time=\d+\.\d{3} `} {
		assert.Regexp(t, regexp.MustCompile(re), line)
	}

	// logrotate: move the file, SIGUSR1, new lines go to a new file
	require.NoError(t, os.Rename(path, path+".1"))
	require.NoError(t, g.cmd.Process.Signal(syscall.SIGUSR1))
	waitFor(t, 5*time.Second, "the reopen", func() bool { return strings.Contains(g.log.String(), "access log reopened") })
	code, _, _ := getStatus(t, g.url("/chat/completions"))
	require.Equal(t, 200, code)
	waitFor(t, 5*time.Second, "a line in the new file", func() bool {
		b, _ := os.ReadFile(path)
		return strings.Count(string(b), "\n") == 1
	})
	old, _ := os.ReadFile(path + ".1")
	assert.Equal(t, 11, strings.Count(string(old), "\n"), "nothing lost or added in the old file")
}

// The bytes an access-log line reports are the bytes the client got: for
// an HTTP/1.0 client a chunked upstream body is relayed without its
// framing, and the count leaves the framing out too.
func TestAccessLogBytesHTTP10(t *testing.T) {
	up := startUpstream(t, "u1", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("part1,"))
		w.(http.Flusher).Flush() // chunked
		w.Write([]byte("part2"))
	})
	g := startGateway(t, 1, "", routesDoc(route("1", "/v1/*", "", up.addr())))
	got := map[string]int{}
	for _, proto := range []string{"HTTP/1.0", "HTTP/1.1"} {
		c, err := net.Dial("tcp", g.addr())
		require.NoError(t, err)
		fmt.Fprintf(c, "GET /v1/%s %s\r\nHost: x\r\nConnection: close\r\n\r\n", proto[5:], proto)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		c.Close()
		require.NoError(t, err)
		require.Contains(t, string(b), "part1,")
		got[proto[5:]] = len(b)
	}
	path := filepath.Join(g.dir, "logs", "access.log")
	var lines []string
	waitFor(t, 5*time.Second, "2 access-log lines", func() bool {
		b, _ := os.ReadFile(path)
		lines = strings.Split(strings.TrimSpace(string(b)), "\n")
		return len(lines) >= 2
	})
	matched := 0
	for _, l := range lines {
		for v, n := range got {
			if strings.Contains(l, `path="/v1/`+v+`"`) {
				matched++
				assert.Contains(t, l, fmt.Sprintf(" bytes=%d ", n), "HTTP/%s: %s", v, l)
			}
		}
	}
	require.Equal(t, 2, matched, "one line per request in\n%s", strings.Join(lines, "\n"))
}
