// Command sseclient measures time to first SSE event through a gateway:
// -conns keep-alive connections each run streams back to back, as the
// shared harness's ttfb client does, but connection i starts i/conns of
// -stagger after the first, so the streams' requests do not arrive in one
// burst (with -stagger 0 they start together, as in the harness).
//
// It prints one line: RESULT {json} with the stream count, errors and the
// TTFB and gap percentiles in µs (the ttfb client's key names). Only
// streams started after every connection has begun are counted.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"
)

type sample struct{ ttfb, gap time.Duration }

type result struct {
	Streams    int    `json:"streams"`
	Errors     int    `json:"errors"`
	FirstError string `json:"first_error,omitempty"`
	TTFBP50    int64  `json:"ttfb_p50_us"`
	TTFBP90    int64  `json:"ttfb_p90_us"`
	TTFBP99    int64  `json:"ttfb_p99_us"`
	GapP50     int64  `json:"max_gap_p50_us"`
	GapP99     int64  `json:"max_gap_p99_us"`
}

func main() {
	target := flag.String("url", "http://127.0.0.1:9080/chat/completions", "stream endpoint (http)")
	conns := flag.Int("conns", 50, "keep-alive connections, one stream at a time each")
	dur := flag.Duration("duration", 5*time.Second, "how long to measure, after the last connection started")
	stagger := flag.Duration("stagger", 0, "spread the connections' starts over this long")
	events := flag.Int("events", 20, "data events each stream must carry before [DONE]")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "http" || u.Host == "" || *conns < 1 || *stagger < 0 {
		fmt.Fprintln(os.Stderr, "sseclient: -url http://host:port/path, -conns >= 1, -stagger >= 0")
		os.Exit(2)
	}
	body := `{"model":"bench-model","stream":true,"messages":[{"role":"user","content":"Say hello."}]}`
	req := []byte(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
		"Accept: text/event-stream\r\nContent-Length: %d\r\n\r\n%s", u.RequestURI(), u.Host, len(body), body))

	start := time.Now()
	from := start.Add(*stagger) // every connection has begun
	until := from.Add(*dur)
	var (
		mu    sync.Mutex
		all   []sample
		res   result
		wg    sync.WaitGroup
		count = func(s []sample, errs int, first string) {
			mu.Lock()
			defer mu.Unlock()
			all = append(all, s...)
			res.Errors += errs
			if res.FirstError == "" {
				res.FirstError = first
			}
		}
	)
	for i := range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(start.Add(*stagger * time.Duration(i) / time.Duration(*conns))))
			var (
				c     net.Conn
				br    *bufio.Reader
				local []sample
				errs  int
				first string
			)
			for time.Now().Before(until) {
				if c == nil {
					if c, err = net.DialTimeout("tcp", u.Host, 5*time.Second); err != nil {
						errs, first = errs+1, cmp(first, err.Error())
						time.Sleep(10 * time.Millisecond)
						continue
					}
					br = bufio.NewReaderSize(c, 16<<10)
				}
				t0 := time.Now()
				s, keep, err := stream(c, br, req, *events)
				if err != nil {
					errs, first = errs+1, cmp(first, err.Error())
				} else if !t0.Before(from) {
					local = append(local, s)
				}
				if err != nil || !keep {
					c.Close()
					c = nil
				}
			}
			if c != nil {
				c.Close()
			}
			count(local, errs, first)
		}()
	}
	wg.Wait()
	res.Streams = len(all)
	pct := func(f func(sample) time.Duration, p float64) int64 {
		if len(all) == 0 {
			return 0
		}
		v := make([]time.Duration, len(all))
		for i, s := range all {
			v[i] = f(s)
		}
		slices.Sort(v)
		return v[min(len(v)-1, int(p*float64(len(v))))].Microseconds()
	}
	ttfb := func(s sample) time.Duration { return s.ttfb }
	gap := func(s sample) time.Duration { return s.gap }
	res.TTFBP50, res.TTFBP90, res.TTFBP99 = pct(ttfb, .50), pct(ttfb, .90), pct(ttfb, .99)
	res.GapP50, res.GapP99 = pct(gap, .50), pct(gap, .99)
	out, _ := json.Marshal(res)
	fmt.Printf("RESULT %s\n", out)
	if res.Streams == 0 {
		os.Exit(1)
	}
}

func cmp(first, msg string) string {
	if first != "" {
		return first
	}
	return msg
}

// stream sends req on c and reads one SSE response: the time to its first
// byte of body, the longest wait between two data events, and whether the
// connection may be reused.
func stream(c net.Conn, br *bufio.Reader, req []byte, events int) (s sample, keep bool, err error) {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	t0 := time.Now()
	if _, err = c.Write(req); err != nil {
		return s, false, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return s, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return s, false, fmt.Errorf("status %d", resp.StatusCode)
	}
	lines := bufio.NewReaderSize(resp.Body, 16<<10)
	var last time.Duration
	n, done := 0, false
	for {
		line, err := lines.ReadSlice('\n')
		if len(line) > 0 && s.ttfb == 0 {
			s.ttfb = time.Since(t0)
		}
		if bytes.HasPrefix(line, []byte("data: ")) {
			now := time.Since(t0)
			if last > 0 {
				s.gap = max(s.gap, now-last)
			}
			last = now
			switch {
			case done:
				return s, false, errors.New("data after [DONE]")
			case bytes.HasPrefix(line[6:], []byte("[DONE]")):
				done = true
			default:
				n++
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return s, false, err
		}
	}
	if !done || n != events {
		return s, false, fmt.Errorf("%d events, [DONE] %v; want %d and [DONE]", n, done, events)
	}
	return s, !resp.Close, nil
}
