package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/internal/testca"
)

// tlsUpstream is an HTTPS upstream that counts handshakes and records SNI.
type tlsUpstream struct {
	ln         net.Listener
	handshakes atomic.Int64
	mu         sync.Mutex
	sni        []string
	hosts      []string
}

func startTLSUpstream(t testing.TB, cert tls.Certificate) *tlsUpstream {
	u := &tlsUpstream{}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			u.handshakes.Add(1)
			u.mu.Lock()
			u.sni = append(u.sni, h.ServerName)
			u.mu.Unlock()
			return nil, nil
		},
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	require.NoError(t, err)
	u.ln = ln
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.hosts = append(u.hosts, r.Host)
		u.mu.Unlock()
		io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Upstream-Path", r.URL.RequestURI())
		fmt.Fprint(w, "secure hello")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return u
}

func (u *tlsUpstream) port() int { return u.ln.Addr().(*net.TCPAddr).Port }

// startGatewayTrusting starts the gateway with ca's certificate as
// apisix.ssl.ssl_trusted_certificate.
func startGatewayTrusting(t testing.TB, ca *testca.CA, routes string) *gateway {
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, ca.PEM, 0o644))
	return startGatewayConf(t, func(port int) string {
		return strings.Replace(gatewayConfig(port, 1, ""), "  enable_admin: false\n",
			"  enable_admin: false\n  ssl:\n    ssl_trusted_certificate: "+caFile+"\n", 1)
	}, routes)
}

// TestHTTPSUpstream: scheme https with pass_host node — SNI and Host are
// the node's, the certificate is verified against
// ssl_trusted_certificate, an untrusted one is a 502 that says so unless
// tls.verify is false, and a pooled TLS connection is reused without a
// second handshake.
func TestHTTPSUpstream(t *testing.T) {
	ca := testca.New(t, "sluice test CA")
	other := testca.New(t, "someone else")
	good := startTLSUpstream(t, ca.Issue(t))
	bad := startTLSUpstream(t, other.Issue(t))

	https := func(id, uri, node, extra string) string {
		return fmt.Sprintf(`  - id: %q
    uri: %s
    upstream:
      type: roundrobin
      scheme: https
      pass_host: node
      nodes:
        %q: 1
%s`, id, uri, node, extra)
	}
	routes := routesDoc(
		https("good", "/chat/completions", fmt.Sprintf("localhost:%d", good.port()), ""),
		https("bad", "/bad", fmt.Sprintf("localhost:%d", bad.port()), ""),
		https("noverify", "/noverify", fmt.Sprintf("localhost:%d", bad.port()), "      tls:\n        verify: false\n"),
	)
	gw := startGatewayTrusting(t, ca, routes)

	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest("POST", gw.url("/chat/completions"), strings.NewReader(`{"model":"gpt-4"}`))
		req.Header.Set("Authorization", "Bearer sk-x")
		resp, err := client.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, string(b))
		assert.Equal(t, "secure hello", string(b))
	}
	assert.Equal(t, int64(1), good.handshakes.Load(), "keep-alive: one handshake for three requests")
	good.mu.Lock()
	assert.Equal(t, []string{"localhost"}, good.sni)
	assert.Equal(t, fmt.Sprintf("localhost:%d", good.port()), good.hosts[0], "pass_host node keeps a non-default port")
	good.mu.Unlock()

	resp, err := client.Get(gw.url("/bad"))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 502, resp.StatusCode)
	assert.Contains(t, string(b), "upstream certificate not trusted")

	resp, err = client.Get(gw.url("/noverify"))
	require.NoError(t, err)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode, string(b))
}

// TestHTTPSResumptionAndMTLS: a new TLS connection to the same upstream
// resumes the session (keepalive_pool.requests 1 forces one connection
// per request), and tls.client_cert/client_key present a client
// certificate to an upstream that requires one.
func TestHTTPSResumptionAndMTLS(t *testing.T) {
	ca := testca.New(t, "sluice test CA")

	// client certificate signed by the same CA
	certPEM, keyPEM := testca.PEM(t, ca.IssueFor(t, x509.ExtKeyUsageClientAuth))

	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	var resumed, fresh, withCert atomic.Int64
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{ca.Issue(t)},
		ClientCAs:    pool,
		ClientAuth:   tls.VerifyClientCertIfGiven,
	})
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS.DidResume {
			resumed.Add(1)
		} else {
			fresh.Add(1)
		}
		if len(r.TLS.PeerCertificates) > 0 {
			withCert.Add(1)
		}
		fmt.Fprint(w, "ok")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port

	indent := func(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n          ") }
	routes := routesDoc(fmt.Sprintf(`  - id: "resume"
    uri: /resume
    upstream:
      scheme: https
      pass_host: node
      nodes:
        "localhost:%d": 1
      keepalive_pool: {size: 1, idle_timeout: 60, requests: 1}
  - id: "mtls"
    uri: /mtls
    upstream:
      scheme: https
      pass_host: node
      nodes:
        "localhost:%d": 1
      tls:
        client_cert: |
          %s
        client_key: |
          %s
`, port, port, indent(string(certPEM)), indent(string(keyPEM))))
	gw := startGatewayTrusting(t, ca, routes)

	for i := 0; i < 3; i++ {
		resp, err := client.Get(gw.url("/resume"))
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, string(b))
	}
	assert.Equal(t, int64(1), fresh.Load(), "one full handshake")
	assert.Equal(t, int64(2), resumed.Load(), "later connections resume the session")
	assert.Zero(t, withCert.Load())

	resp, err := client.Get(gw.url("/mtls"))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, string(b))
	assert.Equal(t, int64(1), withCert.Load(), "client certificate presented")
}

// upload sends POST /upload with a body of size bytes (chunk repeated) on
// c from a goroutine; the channel reports how the writing ended.
func upload(c net.Conn, size int, chunk []byte) <-chan error {
	sent := make(chan error, 1)
	go func() {
		_, err := fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
		for n := 0; err == nil && n < size; n += len(chunk) {
			_, err = c.Write(chunk)
		}
		sent <- err
	}()
	return sent
}

// slowAccept delays every accepted connection: a TLS listener over it
// starts each handshake late, as a far model API does.
type slowAccept struct {
	net.Listener
	delay time.Duration
}

func (l slowAccept) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		time.Sleep(l.delay)
	}
	return c, err
}

// TestHTTPSUploadWhileHandshaking: a large prompt sent at full speed while
// sluice is still in the TLS handshake with a fresh upstream connection
// arrives whole (the client is paused, not cut as a pipelining flood).
func TestHTTPSUploadWhileHandshaking(t *testing.T) {
	ca := testca.New(t, "sluice test CA")
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := tls.NewListener(slowAccept{raw, 700 * time.Millisecond}, &tls.Config{Certificates: []tls.Certificate{ca.Issue(t)}})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		if r.URL.Path == "/slow" {
			time.Sleep(1500 * time.Millisecond) // a model thinking longer than the send timeout
		}
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	port := raw.Addr().(*net.TCPAddr).Port
	routes := routesDoc(fmt.Sprintf(`  - id: "up"
    uri: /upload
    upstream:
      type: roundrobin
      scheme: https
      pass_host: node
      nodes:
        "localhost:%d": 1
  - id: "slow"
    uri: /slow
    upstream:
      type: roundrobin
      scheme: https
      pass_host: node
      timeout: {connect: 5, send: 0.5, read: 5}
      nodes:
        "127.0.0.1:%d": 1
`, port, port)) // (another pool key than /upload's: a fresh, slow handshake)
	gw := startGatewayTrusting(t, ca, routes)

	const size = 32 << 20
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	want := sha256.New()
	for n := 0; n < size; n += len(chunk) {
		want.Write(chunk)
	}
	c, err := net.Dial("tcp", gw.addr())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, <-upload(c, size, chunk), "the upload was cut")
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	got, _ := io.ReadAll(resp.Body)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, fmt.Sprintf("%d %x", size, want.Sum(nil)), string(got), "body intact")

	// a prompt the stash holds whole: once sent, the response is waited
	// for with the read timeout (5 s), not the send timeout (0.5 s)
	body := bytes.Repeat([]byte("p"), 1<<20+100<<10) // just over the 1 MiB cap: stashed whole
	sum := sha256.Sum256(body)
	c2, err := net.Dial("tcp", gw.addr())
	require.NoError(t, err)
	defer c2.Close()
	_, err = fmt.Fprintf(c2, "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(body))
	require.NoError(t, err)
	_, err = c2.Write(body)
	require.NoError(t, err)
	c2.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err = http.ReadResponse(bufio.NewReader(c2), nil)
	require.NoError(t, err)
	got, _ = io.ReadAll(resp.Body)
	assert.Equal(t, 200, resp.StatusCode, string(got))
	assert.Equal(t, fmt.Sprintf("%d %x", len(body), sum), string(got))
}

// TestHTTPSUploadToFailingUpstream: when the upstream connection fails
// while a large upload is held back (its handshake never completes), the
// client gets a 502 with an error_msg, not a reset.
func TestHTTPSUploadToFailingUpstream(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { raw.Close() })
	go func() {
		for {
			c, err := raw.Accept()
			if err != nil {
				return
			}
			time.Sleep(700 * time.Millisecond) // then hang up mid-handshake
			c.Close()
		}
	}()
	routes := routesDoc(fmt.Sprintf(`  - id: "dead"
    uri: /upload
    upstream:
      type: roundrobin
      scheme: https
      nodes:
        "127.0.0.1:%d": 1
`, raw.Addr().(*net.TCPAddr).Port))
	gw := startGateway(t, 1, "", routes)
	c, err := net.Dial("tcp", gw.addr())
	require.NoError(t, err)
	defer c.Close()
	upload(c, 32<<20, bytes.Repeat([]byte("x"), 64<<10))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err, "the client got no answer")
	b, _ := io.ReadAll(resp.Body)
	assert.Equal(t, 502, resp.StatusCode, string(b))
	assert.Contains(t, string(b), "error_msg")
}
