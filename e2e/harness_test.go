// Package e2e builds the real sluice binary once and drives it over the
// network, with real upstreams on 127.0.0.1, the way a user would.
package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/internal/proctest"
)

// sluiceBin is built with the race detector (most tests); sluiceBinPlain
// without, for tests that measure memory (race shadow memory inflates RSS).
var sluiceBin, sluiceBinPlain string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sluiceBin = filepath.Join(dir, "sluice")
	sluiceBinPlain = filepath.Join(dir, "sluice-plain")
	builds := [][]string{{"build", "-race", "-o", sluiceBin, "../cmd/sluice"}, {"build", "-o", sluiceBinPlain, "../cmd/sluice"}}
	if os.Getenv("SLUICE_E2E_NORACE") != "" {
		builds[0] = []string{"build", "-o", sluiceBin, "../cmd/sluice"}
	}
	for _, args := range builds {
		build := exec.Command("go", args...)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building sluice:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a port that was free a moment ago on 127.0.0.1.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", d, what)
}

// gateway is a running sluice process.
type gateway struct {
	t      testing.TB
	dir    string
	port   int
	cmd    *exec.Cmd
	log    *proctest.Buffer
	exited chan struct{}
	err    error
}

func (g *gateway) addr() string { return "127.0.0.1:" + strconv.Itoa(g.port) }
func (g *gateway) url(path string) string {
	return "http://" + g.addr() + path
}

// gatewayConfig is config.yaml for standalone (yaml) mode with the given
// data-plane port; extra is appended under nginx_config.http.
func gatewayConfig(port int, loops int, httpExtra string) string {
	c := fmt.Sprintf(`apisix:
  node_listen:
    - ip: 127.0.0.1
      port: %d
  enable_admin: false
deployment:
  role: traditional
  role_traditional:
    config_provider: yaml
nginx_config:
  worker_processes: %d
`, port, loops)
	if httpExtra != "" {
		c += "  http:\n" + httpExtra
	}
	return c
}

// startGateway writes conf/config.yaml and conf/apisix.yaml into a temp dir
// and starts sluice there; it is stopped (SIGTERM, then SIGKILL) by PID at
// cleanup, and its log is printed only when the test failed.
func startGateway(t testing.TB, loops int, httpExtra, routes string) *gateway {
	t.Helper()
	return startGatewayConf(t, func(port int) string { return gatewayConfig(port, loops, httpExtra) }, routes)
}

// startGatewayConf is startGateway with config.yaml rendered by config
// for the gateway's data-plane port.
func startGatewayConf(t testing.TB, config func(port int) string, routes string) *gateway {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "conf"), 0o755))
	port := freePort(t)
	writeFile(t, filepath.Join(dir, "conf", "config.yaml"), config(port))
	writeFile(t, filepath.Join(dir, "conf", "apisix.yaml"), routes+"\n#END\n")
	g := launchGateway(t, dir, port)
	g.waitListening(g.addr())
	return g
}

// launchGateway starts sluice in dir with dir/conf/config.yaml; it does not
// wait. The process is stopped (SIGTERM, then SIGKILL) by PID at cleanup,
// and its log is printed only when the test failed.
func launchGateway(t testing.TB, dir string, port int) *gateway {
	t.Helper()
	g := &gateway{t: t, dir: dir, port: port, log: &proctest.Buffer{}, exited: make(chan struct{})}
	g.cmd = exec.Command(sluiceBin, "run", "-c", filepath.Join(dir, "conf", "config.yaml"))
	g.cmd.Dir = dir
	g.cmd.Stdout, g.cmd.Stderr = g.log, g.log
	require.NoError(t, g.cmd.Start())
	go func() {
		g.err = g.cmd.Wait()
		close(g.exited)
	}()
	t.Cleanup(func() {
		g.stop()
		if t.Failed() {
			t.Logf("gateway log:\n%s", g.log.String())
		}
	})
	return g
}

// waitListening waits until addr accepts connections, failing the test if
// the process exits first.
func (g *gateway) waitListening(addr string) {
	g.t.Helper()
	waitFor(g.t, 20*time.Second, "sluice to listen on "+addr, func() bool {
		select {
		case <-g.exited:
			g.t.Fatalf("gateway exited early: %v\n%s", g.err, g.log.String())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

func (g *gateway) writeRoutes(routes string) {
	writeFile(g.t, filepath.Join(g.dir, "conf", "apisix.yaml"), routes+"\n#END\n")
}

// stop ends the process: SIGTERM, then SIGKILL after 5 s.
func (g *gateway) stop() {
	select {
	case <-g.exited:
		return
	default:
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(5 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
	}
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(data), 0o644))
	require.NoError(t, os.Rename(tmp, path))
}

// upstream is a real HTTP server on 127.0.0.1 that names itself and echoes
// what it received in response headers.
type upstream struct {
	name string
	srv  *http.Server
	ln   net.Listener
	mu   sync.Mutex
	hits int
	last *http.Request
	body []byte
}

func (u *upstream) addr() string { return u.ln.Addr().String() }

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits
}

func (u *upstream) lastRequest() (*http.Request, []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last, u.body
}

// startUpstream starts an upstream; handler (optional) answers after the
// request is recorded, else a small JSON 200.
func startUpstream(t testing.TB, name string, handler http.HandlerFunc) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := &upstream{name: name, ln: ln}
	u.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.hits++
		u.last = r.Clone(r.Context())
		u.body = body
		u.mu.Unlock()
		w.Header().Set("X-Upstream-Name", name)
		w.Header().Set("X-Upstream-Path", r.URL.RequestURI())
		w.Header().Set("X-Upstream-Host", r.Host)
		if handler != nil {
			handler(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"upstream":%q,"bytes":%d}`, name, len(body))
	})}
	go u.srv.Serve(ln)
	t.Cleanup(func() { u.srv.Close() })
	return u
}

// route renders one standalone-mode route to the given nodes ("addr":weight).
func route(id, uri string, extra string, nodes ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - id: %q\n    uri: %s\n", id, uri)
	if extra != "" {
		b.WriteString(extra)
	}
	b.WriteString("    upstream:\n      type: roundrobin\n      nodes:\n")
	for _, n := range nodes {
		addr, w, _ := strings.Cut(n, "=")
		if w == "" {
			w = "1"
		}
		fmt.Fprintf(&b, "        %q: %s\n", addr, w)
	}
	return b.String()
}

func routesDoc(routes ...string) string {
	return "routes:\n" + strings.Join(routes, "")
}

// rawConn is a client that writes bytes as given and reads responses.
type rawConn struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

func (rc *rawConn) send(s string) {
	rc.t.Helper()
	_, err := rc.c.Write([]byte(s))
	require.NoError(rc.t, err)
}

// readResponse reads one response (for request method m) with a deadline.
func (rc *rawConn) readResponse(method string) (*http.Response, []byte, error) {
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(rc.r, &http.Request{Method: method})
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body, err
}

// closedWithin reports whether the server closes rc within d.
func (rc *rawConn) closedWithin(d time.Duration) bool {
	rc.c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		_, err := rc.c.Read(buf)
		if err == nil {
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return false
		}
		return true
	}
}

func dialTimeout(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func execCommand(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
