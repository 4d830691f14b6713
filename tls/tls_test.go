package tls

import (
	"context"
	ctls "crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/internal/testca"
)

// stallingUpstream is a TLS server that completes the handshake and then
// neither reads nor writes until the test ends (one goroutine per
// connection).
func stallingUpstream(t *testing.T, ca *testca.CA) string {
	ln, err := ctls.Listen("tcp", "127.0.0.1:0", &ctls.Config{Certificates: []ctls.Certificate{ca.Issue(t)}})
	require.NoError(t, err)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if c.(*ctls.Conn).Handshake() == nil {
					<-stop
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// dialerAndUpstream is a Dialer trusting a fresh CA, and a stalling
// upstream with a certificate from it.
func dialerAndUpstream(t *testing.T) (*Dialer, string) {
	ca := testca.New(t, "tls test CA")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, ca.PEM, 0o644))
	d, err := NewDialer(caFile)
	require.NoError(t, err)
	return d, stallingUpstream(t, ca)
}

// An upstream that stops reading must not keep the bridge (its goroutines,
// the TLS socket and the pair) alive after the loop side closed: a write
// stalled longer than the send timeout ends it.
func TestBridgeEndsWhenUpstreamStalls(t *testing.T) {
	d, addr := dialerAndUpstream(t)
	before := runtime.NumGoroutine()
	loop, err := d.Dial(context.Background(), Target{Addr: addr, ServerName: "localhost", Verify: true,
		SendTimeout: 300 * time.Millisecond}, 5*time.Second)
	require.NoError(t, err)

	// write until the upstream's window and every buffer are full
	chunk := make([]byte, 64<<10)
	for {
		loop.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := loop.Write(chunk); err != nil {
			// full (timeout), or the bridge already gave up on the
			// stalled upstream and closed its end (broken pipe)
			ne, ok := err.(net.Error)
			require.True(t, ok && ne.Timeout() || errors.Is(err, syscall.EPIPE), "%v", err)
			break
		}
	}
	loop.Close() // the engine drops the exchange (send timeout, client gone)
	// the bridge's goroutines end; the upstream's handler (one) stays
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+1 {
		buf := make([]byte, 1<<16)
		t.Fatalf("goroutines: %d before the dial, %d 5 s after the loop side closed:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestDialVerifiesName(t *testing.T) {
	d, addr := dialerAndUpstream(t)
	_, err := d.Dial(context.Background(), Target{Addr: addr, ServerName: "other.example", Verify: true}, 5*time.Second)
	var ce *CertError
	assert.ErrorAs(t, err, &ce)
	c, err := d.Dial(context.Background(), Target{Addr: addr, ServerName: "localhost", Verify: true}, 5*time.Second)
	require.NoError(t, err)
	c.Close()
}

// TestClientIdentitiesBounded: rotated client certificates do not pile up
// in the Dialer: past maxIdentities the least recently used goes, and one
// in use stays.
func TestClientIdentitiesBounded(t *testing.T) {
	defer func(n int) { maxIdentities = n }(maxIdentities)
	maxIdentities = 2
	d, err := NewDialer("")
	require.NoError(t, err)
	ca := testca.New(t, "client CA")
	var pems [3][2][]byte
	for i := range pems {
		pems[i][0], pems[i][1] = testca.PEM(t, ca.IssueFor(t, x509.ExtKeyUsageClientAuth))
	}
	use := func(i int) *ctls.Config {
		cfg, err := d.config(Target{ClientCert: pems[i][0], ClientKey: pems[i][1]})
		require.NoError(t, err)
		return cfg
	}
	first := use(0)
	use(1)
	assert.Same(t, first.ClientSessionCache, use(0).ClientSessionCache, "identity 0 was parsed again")
	use(2) // evicts 1, the least recently used
	assert.Len(t, d.certs, 2)
	assert.Same(t, first.ClientSessionCache, use(0).ClientSessionCache, "the identity in use was evicted")
	assert.Len(t, d.certs, 2)
}
