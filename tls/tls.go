// Package tls owns sluice's TLS to HTTPS upstreams: verified client
// configurations (system roots or apisix.ssl.ssl_trusted_certificate, SNI,
// mutual TLS), a shared session cache for resumption, and the bridge that
// lets a gnet event loop use a TLS connection as if it were plaintext.
//
// gnet has no TLS. A Dialer therefore completes the TCP connect and the TLS
// handshake on its own goroutine, then joins the tls.Conn to one end of a
// Unix socket pair with two copy goroutines; the other end is an ordinary
// socket the engine enrolls into its loop and pools like any upstream
// connection. Everything here runs off the event loops.
package tls

import (
	"context"
	ctls "crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Dialer opens verified TLS connections to upstreams. It is safe for
// concurrent use.
type Dialer struct {
	roots *x509.CertPool // nil = system roots
	cache ctls.ClientSessionCache

	mu    sync.Mutex
	certs map[string]*clientIdentity // by PEM pair, at most maxIdentities
	uses  uint64                     // a clock for clientIdentity.used
}

// maxIdentities bounds the parsed client certificates a Dialer keeps:
// certificates rotated through the Admin API would otherwise stay in
// memory for good. Past it the least recently used is dropped (it costs a
// parse and its sessions if it comes back). A variable for tests.
var maxIdentities = 256

// clientIdentity is one client certificate and the session cache used with
// it: sessions are never shared between identities (a session resumed
// without the certificate would reach a mutual-TLS upstream anonymously).
type clientIdentity struct {
	cert  ctls.Certificate
	cache ctls.ClientSessionCache
	used  uint64 // Dialer.uses when last dialed with
}

// NewDialer returns a Dialer that verifies against the CA bundle in
// caFile, or the system roots when caFile is "" or "system" (APISIX's
// apisix.ssl.ssl_trusted_certificate).
func NewDialer(caFile string) (*Dialer, error) {
	d := &Dialer{cache: ctls.NewLRUClientSessionCache(1024), certs: map[string]*clientIdentity{}}
	if caFile != "" && caFile != "system" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls: ssl_trusted_certificate: %w", err)
		}
		d.roots = x509.NewCertPool()
		if !d.roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: ssl_trusted_certificate %s: no PEM certificate found", caFile)
		}
	}
	return d, nil
}

// Target says how to reach one upstream node over TLS.
type Target struct {
	Addr       string // "ip:port" to connect to
	ServerName string // SNI and the name verified; "" for an IP literal node
	Verify     bool   // false = tls.verify: false (no chain or name check)
	ClientCert []byte // PEM, for mutual TLS (with ClientKey)
	ClientKey  []byte
	// SendTimeout bounds one write to the upstream (the upstream's send
	// timeout): a bridge whose upstream stopped reading ends instead of
	// waiting for it forever; 0: 60 s.
	SendTimeout time.Duration
}

// CertError is a handshake failure caused by the upstream's certificate
// (unknown authority, wrong name, expired).
type CertError struct{ Err error }

func (e *CertError) Error() string { return "upstream certificate not trusted: " + e.Err.Error() }
func (e *CertError) Unwrap() error { return e.Err }

// Dial connects to t, completes the TLS handshake within timeout, and
// returns the plaintext end of a bridge to it: bytes written there are
// sent encrypted, bytes the upstream sends arrive decrypted. Closing either
// side closes the other. It blocks: call it off the event loop.
func (d *Dialer) Dial(ctx context.Context, t Target, timeout time.Duration) (*net.UnixConn, error) {
	cfg, err := d.config(t)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nd := net.Dialer{KeepAlive: 30 * time.Second}
	raw, err := nd.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return nil, err
	}
	tc := ctls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		var ve *ctls.CertificateVerificationError
		var ue x509.UnknownAuthorityError
		var he x509.HostnameError
		var ie x509.CertificateInvalidError
		if errors.As(err, &ve) || errors.As(err, &ue) || errors.As(err, &he) || errors.As(err, &ie) {
			return nil, &CertError{Err: err}
		}
		return nil, fmt.Errorf("tls handshake with %s: %w", t.Addr, err)
	}
	loopSide, bridgeSide, err := socketPair()
	if err != nil {
		tc.Close()
		return nil, err
	}
	send := t.SendTimeout
	if send <= 0 {
		send = 60 * time.Second
	}
	go bridge(tc, bridgeSide, send)
	return loopSide, nil
}

// config builds the client configuration for t (certificates parsed once
// per distinct PEM pair).
func (d *Dialer) config(t Target) (*ctls.Config, error) {
	cfg := &ctls.Config{
		ServerName:         t.ServerName,
		RootCAs:            d.roots,
		ClientSessionCache: d.cache,
		InsecureSkipVerify: !t.Verify,
		MinVersion:         ctls.VersionTLS12,
		NextProtos:         []string{"http/1.1"},
	}
	if len(t.ClientCert) > 0 {
		key := string(t.ClientCert) + "\x00" + string(t.ClientKey)
		d.mu.Lock()
		id, ok := d.certs[key]
		if !ok {
			pair, err := ctls.X509KeyPair(t.ClientCert, t.ClientKey)
			if err != nil {
				d.mu.Unlock()
				return nil, fmt.Errorf("tls: client_cert/client_key: %w", err)
			}
			id = &clientIdentity{cert: pair, cache: ctls.NewLRUClientSessionCache(256)}
			if len(d.certs) >= maxIdentities {
				d.evictOldest()
			}
			d.certs[key] = id
		}
		d.uses++
		id.used = d.uses
		d.mu.Unlock()
		cfg.Certificates = []ctls.Certificate{id.cert}
		cfg.ClientSessionCache = id.cache
	}
	return cfg, nil
}

// evictOldest drops the least recently used client identity (under mu;
// a linear scan, run only when a new identity would pass the bound).
func (d *Dialer) evictOldest() {
	var oldest string
	var at uint64
	first := true
	for k, id := range d.certs {
		if first || id.used < at {
			oldest, at, first = k, id.used, false
		}
	}
	delete(d.certs, oldest)
}

// socketPair returns the two ends of a connected AF_UNIX stream pair.
func socketPair() (*net.UnixConn, *net.UnixConn, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: socketpair: %w", err)
	}
	a, err := fileConn(fds[0], "sluice-tls-loop")
	if err != nil {
		syscall.Close(fds[1])
		return nil, nil, err
	}
	b, err := fileConn(fds[1], "sluice-tls-bridge")
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

func fileConn(fd int, name string) (*net.UnixConn, error) {
	f := os.NewFile(uintptr(fd), name)
	c, err := net.FileConn(f)
	f.Close() // FileConn dups the descriptor
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return c.(*net.UnixConn), nil
}

// bridge copies between the TLS connection and the bridge end of the pair
// until either side ends, then closes both (so the loop sees the upstream
// close, and a loop-side close tears the TLS connection down). A write to
// the upstream that makes no progress for send fails: an upstream that
// stops reading would otherwise hold both copies (and the loop-side
// close, which nobody reads then) forever.
func bridge(tc *ctls.Conn, side *net.UnixConn, send time.Duration) {
	done := make(chan struct{}, 2)
	cp := func(dst io.Writer, src io.Reader) {
		buf := make([]byte, 32<<10)
		io.CopyBuffer(dst, src, buf)
		done <- struct{}{}
	}
	go cp(deadlineWriter{tc, send}, side)
	go cp(side, tc)
	<-done
	tc.Close()
	side.Close()
	<-done
}

// deadlineWriter sets a write deadline of d before each write to c.
type deadlineWriter struct {
	c *ctls.Conn
	d time.Duration
}

func (w deadlineWriter) Write(b []byte) (int, error) {
	_ = w.c.SetWriteDeadline(time.Now().Add(w.d))
	return w.c.Write(b)
}
