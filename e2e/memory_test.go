package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rssKiB reads VmRSS of pid.
func rssKiB(t testing.TB, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// slowCopy copies src to dst at about rate bytes per second.
func slowCopy(dst io.Writer, src io.Reader, rate int) (int64, error) {
	buf := make([]byte, 32<<10)
	start := time.Now()
	var total int64
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
			if ahead := time.Duration(float64(total)/float64(rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// TestSlowPeersBoundedRSS: with a client reading a fast 32 MiB response at
// 8 MiB/s, with an upstream reading a fast 64 MiB upload at 16 MiB/s, and
// with a WebSocket client reading a fast 32 MiB stream at 8 MiB/s, the
// gateway's RSS stays within 16 MiB of where it started (gnet alone would
// have buffered the whole body).
func TestSlowPeersBoundedRSS(t *testing.T) {
	const size, rate = 32 << 20, 8 << 20
	chunk := []byte(strings.Repeat("z", 64<<10))
	ln, err := netListen()
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" { // a tunnel streaming size bytes
			c, _, ok := switchProtocols(w)
			if !ok {
				return
			}
			defer c.Close()
			for n := 0; n < size; n += len(chunk) {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
			return
		}
		if r.Method == "POST" {
			n, _ := slowCopy(io.Discard, r.Body, 2*rate) // a slow reader upstream
			fmt.Fprint(w, n)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
		for n := 0; n < size; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	race := sluiceBin
	sluiceBin = sluiceBinPlain // RSS of a race build measures the detector
	gw := startGateway(t, 1, "", routesDoc(route("1", "/*", "", ln.Addr().String()),
		route("ws", "/ws", "    enable_websocket: true\n", ln.Addr().String())))
	sluiceBin = race
	pid := gw.cmd.Process.Pid

	watch := func(done <-chan struct{}) (peak int) {
		for {
			if r := rssKiB(t, pid); r > peak {
				peak = r
			}
			select {
			case <-done:
				return peak
			case <-time.After(50 * time.Millisecond):
			}
		}
	}

	t.Run("slow client", func(t *testing.T) {
		base := rssKiB(t, pid)
		c, err := net.Dial("tcp", gw.addr())
		require.NoError(t, err)
		defer c.Close()
		c.(*net.TCPConn).SetReadBuffer(64 << 10)
		fmt.Fprint(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
		done := make(chan struct{})
		peakc := make(chan int)
		go func() { peakc <- watch(done) }()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		n, err := slowCopy(io.Discard, resp.Body, rate)
		close(done)
		peak := <-peakc
		require.NoError(t, err)
		assert.Equal(t, int64(size), n)
		t.Logf("RSS %d KiB before, peak %d KiB (+%d KiB) while a client read %d MiB at %d MiB/s",
			base, peak, peak-base, size>>20, rate>>20)
		assert.Less(t, peak-base, 16<<10)
	})

	t.Run("slow upstream", func(t *testing.T) {
		base := rssKiB(t, pid)
		done := make(chan struct{})
		peakc := make(chan int)
		go func() { peakc <- watch(done) }()
		const upSize = 2 * size
		body := io.MultiReader(strings.NewReader(strings.Repeat("y", upSize)))
		req, _ := http.NewRequest("POST", gw.url("/upload"), body)
		req.ContentLength = upSize
		resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		close(done)
		peak := <-peakc
		assert.Equal(t, fmt.Sprint(upSize), string(b))
		t.Logf("RSS %d KiB before, peak %d KiB (+%d KiB) while an upstream read %d MiB at %d MiB/s",
			base, peak, peak-base, upSize>>20, 2*rate>>20)
		assert.Less(t, peak-base, 16<<10)
	})
	t.Run("slow WebSocket client", func(t *testing.T) {
		base := rssKiB(t, pid)
		c, err := net.Dial("tcp", gw.addr())
		require.NoError(t, err)
		defer c.Close()
		c.(*net.TCPConn).SetReadBuffer(64 << 10)
		fmt.Fprint(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		done := make(chan struct{})
		peakc := make(chan int)
		go func() { peakc <- watch(done) }()
		r := bufio.NewReader(c)
		resp, err := http.ReadResponse(r, &http.Request{Method: "GET"})
		require.NoError(t, err)
		require.Equal(t, 101, resp.StatusCode)
		n, err := slowCopy(io.Discard, r, rate)
		close(done)
		peak := <-peakc
		require.NoError(t, err)
		assert.Equal(t, int64(size), n)
		t.Logf("RSS %d KiB before, peak %d KiB (+%d KiB) while a WebSocket client read %d MiB at %d MiB/s",
			base, peak, peak-base, size>>20, rate>>20)
		assert.Less(t, peak-base, 16<<10)
	})
}
