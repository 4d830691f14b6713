// Package testupstream is a minimal HTTP/1.1 upstream for tests and
// benchmarks: it answers every request with one canned response, supports
// keep-alive, pipelining and Content-Length / chunked request bodies, and
// does not allocate per request (so a benchmark's allocs/op counts the
// gateway alone).
package testupstream

import (
	"net"
	"sync"
	"sync/atomic"

	"github.com/sluice-gw/sluice/engine/http1"
)

// Server is a running upstream.
type Server struct {
	ln       net.Listener
	resp     []byte
	Requests atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

// JSON is a typical small chat-completion response.
var JSON = []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 26\r\n\r\n{\"id\":\"c1\",\"object\":\"ok\"}\n")

// Start listens on 127.0.0.1:0 and answers every request with resp.
func Start(resp []byte) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, resp: resp, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is "127.0.0.1:port".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server and closes its connections.
func (s *Server) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(c)
	}
}

func (s *Server) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	buf := make([]byte, 64<<10)
	out := make([]byte, 0, 64<<10)
	var req http1.Request
	req.Headers = make([]http1.Header, 0, 100)
	var lim http1.Limits
	var ch http1.Chunked
	n := 0
	for {
		m, err := c.Read(buf[n:])
		if err != nil {
			return
		}
		n += m
		off := 0
		out = out[:0]
	parse:
		for off < n {
			h, err := http1.ParseRequest(&req, buf[off:n], &lim)
			if err == http1.ErrNeedMore {
				break
			}
			if err != nil {
				return
			}
			end := off + h
			switch req.Body {
			case http1.BodyLength:
				if int64(n-end) < req.ContentLength {
					if end+int(req.ContentLength) > len(buf) {
						return // too large for this simple server
					}
					break parse
				}
				end += int(req.ContentLength)
			case http1.BodyChunked:
				ch.Reset()
				p := end
				for {
					k, _, done, err := ch.Next(buf[p:n])
					if err != nil {
						return
					}
					p += k
					if done {
						break
					}
					if k == 0 {
						break parse
					}
				}
				end = p
			}
			off = end
			s.Requests.Add(1)
			out = append(out, s.resp...)
		}
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
		}
		copy(buf, buf[off:n])
		n -= off
		if n == len(buf) {
			return
		}
	}
}
