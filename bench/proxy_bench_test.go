// Package bench is sluice's go test -bench suite for throughput
// regressions: the end-to-end proxy (in-process engine, one loop) against
// its baseline twins — the upstream direct, and net/http/httputil's
// ReverseProxy — each over keep-alive connections with pre-built requests.
// The parser, matcher and picker micro-benchmarks sit beside their code
// (engine/http1, router, balancer); `make bench` runs them all.
package bench

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/engine"
	"github.com/sluice-gw/sluice/internal/testupstream"
	"github.com/sluice-gw/sluice/model"
	"github.com/sluice-gw/sluice/router"
)

var chatRequest = []byte("POST /chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer sk-bench\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"model\":\"gpt\"}\n")

// latencies records per-request durations; Quantile sorts a copy once at
// the end, so Record does not allocate after the slice grew.
type latencies struct{ d []time.Duration }

func (l *latencies) Record(d time.Duration) { l.d = append(l.d, d) }
func (l *latencies) Quantile(q float64) time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), l.d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(q*float64(len(s)-1))]
}

// rawClient sends pre-built requests on one keep-alive connection and reads
// Content-Length responses without allocating.
type rawClient struct {
	c   net.Conn
	buf []byte
}

func dial(b *testing.B, addr string) *rawClient {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return &rawClient{c: c, buf: make([]byte, 64<<10)}
}

var (
	crlfcrlf = []byte("\r\n\r\n")
	clName   = []byte("\r\nContent-Length: ")
)

// RoundTrip sends req and returns the response status.
func (r *rawClient) RoundTrip(req []byte) int {
	if _, err := r.c.Write(req); err != nil {
		return -1
	}
	n := 0
	for {
		m, err := r.c.Read(r.buf[n:])
		if err != nil {
			return -1
		}
		n += m
		h := bytes.Index(r.buf[:n], crlfcrlf)
		if h < 0 {
			continue
		}
		i := bytes.Index(r.buf[:h], clName)
		cl := 0
		if i >= 0 {
			for _, c := range r.buf[i+len(clName) : h] {
				if c < '0' || c > '9' {
					break
				}
				cl = cl*10 + int(c-'0')
			}
		}
		if n >= h+4+cl {
			return int(r.buf[9]-'0')*100 + int(r.buf[10]-'0')*10 + int(r.buf[11]-'0')
		}
	}
}

func runClient(b *testing.B, addr string) {
	c := dial(b, addr)
	for i := 0; i < 100; i++ { // warm up
		if code := c.RoundTrip(chatRequest); code != 200 {
			b.Fatalf("warm-up status %d", code)
		}
	}
	h := &latencies{d: make([]time.Duration, 0, 1<<20)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if code := c.RoundTrip(chatRequest); code != 200 {
			b.Fatalf("status %d", code)
		}
		if len(h.d) < cap(h.d) {
			h.Record(time.Since(t0))
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(h.Quantile(0.99).Microseconds()), "p99-µs")
}

func upstream(b *testing.B) *testupstream.Server {
	up, err := testupstream.Start(testupstream.JSON)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(up.Close)
	return up
}

func freeAddr(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// BenchmarkDirect is the baseline: the client straight to the upstream.
func BenchmarkDirect(b *testing.B) {
	up := upstream(b)
	runClient(b, up.Addr())
	if up.Requests.Load() < int64(b.N) {
		b.Fatalf("upstream saw %d requests, want ≥ %d", up.Requests.Load(), b.N)
	}
}

// startSluice starts an in-process engine with one loop and a route to
// upstream, and returns its address.
func startSluice(b *testing.B, upstream string) string {
	host, port, _ := net.SplitHostPort(upstream)
	var p int
	for _, c := range port {
		p = p*10 + int(c-'0')
	}
	snap := model.NewSnapshot()
	snap.Routes = []*model.Route{{ID: "1", URI: "/chat/completions", Upstream: &model.Upstream{Nodes: model.Nodes{{Host: host, Port: p, Weight: 1}}}}}
	tbl, err := (&router.Builder{}).Build(snap)
	if err != nil {
		b.Fatal(err)
	}
	pub := &router.Publisher{}
	pub.Store(tbl)
	addr := freeAddr(b)
	srv := engine.New(engine.Options{Listen: []string{addr}, Loops: 1, Publisher: pub, Version: "bench",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Shutdown(context.Background()) })
	return addr
}

// BenchmarkSluice proxies through an in-process engine with one loop.
func BenchmarkSluice(b *testing.B) {
	up := upstream(b)
	runClient(b, startSluice(b, up.Addr()))
	if up.Requests.Load() < int64(b.N) {
		b.Fatalf("upstream saw %d requests, want ≥ %d", up.Requests.Load(), b.N)
	}
}

// BenchmarkHTTPUtil proxies through net/http/httputil.ReverseProxy.
func BenchmarkHTTPUtil(b *testing.B) {
	up := upstream(b)
	target, _ := url.Parse("http://" + up.Addr())
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: rp}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	runClient(b, ln.Addr().String())
}

// BenchmarkSluiceParallel proxies over 50 concurrent keep-alive
// connections (wrk's -c50 shape) through one loop.
func BenchmarkSluiceParallel(b *testing.B) {
	up := upstream(b)
	addr := startSluice(b, up.Addr())
	b.SetParallelism(25) // 25 × GOMAXPROCS(2) = 50 connections
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c := dial(b, addr)
		for pb.Next() {
			if code := c.RoundTrip(chatRequest); code != 200 {
				b.Errorf("status %d", code)
				return
			}
		}
	})
}
