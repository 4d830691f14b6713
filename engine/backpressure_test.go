package engine

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bigUpstream answers every request with size bytes of a fixed pattern,
// written as fast as the socket takes them.
func bigUpstream(t *testing.T, size int) (addr string, sum [32]byte) {
	chunk := make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = byte('a' + i%26)
	}
	h := sha256.New()
	for n := 0; n < size; n += len(chunk) {
		h.Write(chunk[:min(len(chunk), size-n)])
	}
	copy(sum[:], h.Sum(nil))
	addr = serveRequests(t, func(c net.Conn) bool {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
		for n := 0; n < size; n += len(chunk) {
			if _, err := c.Write(chunk[:min(len(chunk), size-n)]); err != nil {
				return false
			}
		}
		return true
	})
	return addr, sum
}

// serveRequests starts a raw HTTP/1.1 upstream on 127.0.0.1: for every
// request on a connection (body discarded) it calls answer, which writes
// the response to c and reports whether the connection stays open.
func serveRequests(t *testing.T, answer func(c net.Conn) bool) string {
	return acceptEach(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(r)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			if !answer(c) {
				return
			}
		}
	})
}

// acceptEach listens on 127.0.0.1 and runs serve on its own goroutine for
// every connection, closing the connection after it; the listener closes
// with the test. It returns the address.
func acceptEach(t *testing.T, serve func(c net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// patterned returns a 64 KiB chunk of letters from base on, and the
// sha256 (hex) of that chunk repeated to size bytes.
func patterned(base byte, size int) (chunk []byte, sum string) {
	chunk = make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = base + byte(i%26)
	}
	h := sha256.New()
	for n := 0; n < size; n += len(chunk) {
		h.Write(chunk)
	}
	return chunk, fmt.Sprintf("%x", h.Sum(nil))
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestSlowClientBoundedMemory: a client that does not read while a fast
// upstream sends 64 MiB makes the gateway stop reading the upstream once
// about MaxBuffered is queued, instead of buffering the whole body; when
// the client reads, everything arrives intact.
func TestSlowClientBoundedMemory(t *testing.T) {
	const size = 64 << 20
	addr, want := bigUpstream(t, size)
	g := startTestGateway(t, 1, snapshot(routeTo("big", "/big", addr)))
	before := heapInUse()

	c := dialBig(t, g.addr)
	time.Sleep(700 * time.Millisecond) // the client reads nothing meanwhile
	grown := int64(heapInUse()) - int64(before)
	t.Logf("gateway heap grew %d KiB while the client did not read", grown>>10)
	assert.Less(t, grown, int64(16<<20), "buffered without bound")

	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	require.NoError(t, err)
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	require.NoError(t, err)
	assert.Equal(t, int64(size), n)
	var got [32]byte
	copy(got[:], h.Sum(nil))
	assert.Equal(t, want, got, "body intact")

	// the connection (and the resumed upstream) keep working
	_, err = c.Write([]byte("GET /big HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
	resp, err = http.ReadResponse(r, nil)
	require.NoError(t, err)
	n, _ = io.Copy(io.Discard, resp.Body)
	assert.Equal(t, int64(size), n)
}

// TestFastUploadBoundedMemory: a client sending a 64 MiB body to an
// upstream that reads nothing for a while makes the gateway stop reading
// the client once about MaxBuffered waits for the upstream; the body then
// arrives intact (the upstream answers with its sha256).
func TestFastUploadBoundedMemory(t *testing.T) {
	const size = 64 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.(*net.TCPConn).SetReadBuffer(64 << 10)
		r := bufio.NewReaderSize(c, 64<<10)
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		time.Sleep(900 * time.Millisecond) // a slow model server
		h := sha256.New()
		n, _ := io.Copy(h, req.Body)
		body := fmt.Sprintf("%d %x", n, h.Sum(nil))
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}()
	g := startTestGateway(t, 1, snapshot(routeTo("up", "/upload", ln.Addr().String())))
	before := heapInUse()

	c, err := net.Dial("tcp", g.addr)
	require.NoError(t, err)
	defer c.Close()
	c.(*net.TCPConn).SetWriteBuffer(64 << 10)
	chunk, want := patterned('A', size)
	sent := make(chan error, 1)
	go func() {
		_, err := fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
		for n := 0; err == nil && n < size; n += len(chunk) {
			_, err = c.Write(chunk)
		}
		sent <- err
	}()
	time.Sleep(600 * time.Millisecond) // the upstream reads nothing meanwhile
	grown := int64(heapInUse()) - int64(before)
	t.Logf("gateway heap grew %d KiB while the upstream did not read", grown>>10)
	assert.Less(t, grown, int64(16<<20), "buffered without bound")

	require.NoError(t, <-sent)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	got, _ := io.ReadAll(resp.Body)
	assert.Equal(t, fmt.Sprintf("%d %s", size, want), string(got), "body intact")
}

// TestPipelineFloodCut: a client that keeps sending while its response is
// pending (pipelined bytes cannot be paused) is cut past 2 caps instead of
// being buffered without bound.
func TestPipelineFloodCut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() { // an upstream that never answers
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	g := startTestGateway(t, 1, snapshot(routeTo("slow", "/slow", ln.Addr().String())))
	before := heapInUse()
	c := dialSend(t, g.addr, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	junk := []byte(strings.Repeat("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n", 2048)) // ~60 KiB
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	sent := 0
	for sent < 64<<20 {
		n, err := c.Write(junk)
		sent += n
		if err != nil {
			break // the gateway cut us
		}
	}
	assert.Less(t, sent, 64<<20, "the gateway must cut a flooding client")
	grown := int64(heapInUse()) - int64(before)
	t.Logf("sent %d KiB before the cut; heap grew %d KiB", sent>>10, grown>>10)
	assert.Less(t, grown, int64(16<<20))
	assert.Zero(t, g.srv.Active())
}

// TestSlowReaderNotCutWhileDraining: a client that reads a paused response
// slowly but steadily is not cut by the send timeout: the timeout is for a
// client that takes nothing (nginx send_timeout: between two writes).
func TestSlowReaderNotCutWhileDraining(t *testing.T) {
	const size = 16 << 20 // well past what the kernel's socket buffers take
	addr, want := bigUpstream(t, size)
	g := startTestGatewayOpts(t, 1, snapshot(routeTo("big", "/big", addr)), func(o *Options) {
		o.MaxBuffered = 2 << 20
		o.SendTimeout = 60 * time.Millisecond // a third of what draining half the cap takes below
	})
	c := dialBig(t, g.addr)
	// at most 64 KiB every 10 ms, from the start: the response soon fills
	// the cap (paused), and half the cap takes longer to drain than the
	// send timeout
	start := time.Now()
	r := bufio.NewReaderSize(&pacedReader{r: c, n: 64 << 10, every: 10 * time.Millisecond}, 64<<10)
	resp, err := http.ReadResponse(r, nil)
	require.NoError(t, err)
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	require.NoError(t, err, "cut after %d bytes; gateway log:\n%s", n, g.logs.String())
	var got [32]byte
	copy(got[:], h.Sum(nil))
	assert.Equal(t, want, got, "body intact")
	t.Logf("read %d bytes in %v", n, time.Since(start))
}

// pacedReader reads at most n bytes per call, one call per every.
type pacedReader struct {
	r     io.Reader
	n     int
	every time.Duration
}

func (p *pacedReader) Read(b []byte) (int, error) {
	time.Sleep(p.every)
	if len(b) > p.n {
		b = b[:p.n]
	}
	return p.r.Read(b)
}

// TestEarlyAnswerToUpload: an upstream that answers an upload early and
// closes at once with the body unread (413, Connection: close; the close
// resets the connection): the client gets that answer, whether it came
// while the client was paused for backpressure and the upstream closed
// before the client was back in the loop ("paused"), or while sluice was
// still sending the body and the send failed first, the answer still in
// the socket ("sending"); the rest of the body is never read as a next
// request (a 431 or a hang).
func TestEarlyAnswerToUpload(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay time.Duration
	}{{"paused", 300 * time.Millisecond}, {"sending", 0}} {
		t.Run(tc.name, func(t *testing.T) { earlyAnswerToUpload(t, tc.delay) })
	}
}

func earlyAnswerToUpload(t *testing.T, delay time.Duration) {
	up := acceptEach(t, func(c net.Conn) {
		c.(*net.TCPConn).SetReadBuffer(16 << 10)
		r := bufio.NewReader(c)
		if _, err := http.ReadRequest(r); err != nil {
			return
		}
		time.Sleep(delay) // (the gateway pauses the client meanwhile)
		io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope")
	})
	g := startTestGatewayOpts(t, 1, snapshot(routeTo("up", "/upload", up)), func(o *Options) { o.MaxBuffered = 256 << 10 })
	for i := 0; i < 10; i++ { // a race: without the fix, some round reads a 431
		c, err := net.Dial("tcp", g.addr)
		require.NoError(t, err)
		go func() {
			chunk := make([]byte, 64<<10)
			_, err := fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 64<<20)
			for n := 0; err == nil && n < 64<<20; n += len(chunk) {
				_, err = c.Write(chunk)
			}
		}()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		// the upstream's answer: never a 431 (the rest of the body read
		// as a request), nor sluice's 502 (the answer lost when the
		// upstream closed while the client was away)
		require.NoError(t, err, "round %d", i)
		assert.Equal(t, 413, resp.StatusCode, "round %d", i)
		b, _ := io.ReadAll(resp.Body)
		assert.Equal(t, "nope", string(b), "round %d", i)
		resp.Body.Close()
		c.Close()
	}
}
