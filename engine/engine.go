// Package engine owns sluice's data plane: the gnet event loops that accept
// clients, parse HTTP/1.1 with engine/http1, match routes on the current
// router.Table, pick upstream nodes with per-loop balancer cursors, and relay
// requests and responses over per-loop pools of upstream connections.
//
// Goroutines: every client and upstream connection belongs to one event loop
// and all of its state (exchange, pool, cursors, buffers) is touched only on
// that loop, without locks. Other goroutines reach a loop only through
// gnet's EventLoop.Execute (dial results, the timer sweep, drain). Server's
// exported methods are safe to call from any goroutine.
package engine

import (
	"github.com/sluice-gw/sluice/engine/accesslog"

	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/sluice-gw/sluice/engine/http1"
	"github.com/sluice-gw/sluice/router"
	sltls "github.com/sluice-gw/sluice/tls"
)

// Options configure a Server. Zero fields take the defaults noted.
type Options struct {
	// Listen lists "ip:port" addresses (apisix.node_listen); default 0.0.0.0:9080.
	Listen []string
	// Loops is the number of event loops (nginx_config.worker_processes);
	// 0 = one per core.
	Loops int
	// Publisher hands out the current routing table. Required.
	Publisher *router.Publisher
	// Version goes into "Server: sluice/<version>".
	Version string
	// MaxHead is the largest request head in bytes (431 beyond, 414 when
	// the request line alone does not fit); default 32 KiB.
	MaxHead int
	// MaxBody is client_max_body_size in bytes (413 beyond); 0 = unlimited.
	MaxBody int64
	// HeaderTimeout: a client must send a whole head within it; default 60 s.
	HeaderTimeout time.Duration
	// BodyTimeout: while a request body streams, a client that sends
	// nothing for this long gets a 408 (nginx client_body_timeout); default 60 s.
	BodyTimeout time.Duration
	// KeepaliveTimeout: an idle client connection is closed after it; default 60 s.
	KeepaliveTimeout time.Duration
	// Logger receives errors and notable events; default slog.Default().
	Logger *slog.Logger
	// TLS dials HTTPS upstreams; nil = a Dialer on the system roots.
	TLS *sltls.Dialer
	// MaxBuffered caps the bytes of a response buffered for a client that
	// reads slower than its upstream sends: past it, sluice stops reading
	// the upstream until the client drained half. Default 1 MiB; -1 = no cap.
	MaxBuffered int
	// SendTimeout: a client that takes none of a paused response for this
	// long is cut (nginx send_timeout); default 60 s.
	SendTimeout time.Duration
	// AccessLog receives one line per request (nil: no access log).
	AccessLog *accesslog.Writer
	// BusyPoll keeps each event loop polling its sockets for this long
	// after its last event before it sleeps (nginx_config.busy_poll); 0 =
	// sleep at once. It saves the wake-up of a sleeping loop on the request
	// path at the price of a busy core.
	BusyPoll time.Duration
}

// gnetOptions are the options the event loops run with.
func (s *Server) gnetOptions() []gnet.Option {
	return []gnet.Option{
		gnet.WithNumEventLoop(s.opts.Loops),
		gnet.WithReusePort(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithTicker(true),
		gnet.WithReadBufferCap(readBufferCap),
		gnet.WithLogger(gnetLogger{s.opts.Logger}),
		gnet.WithBusyPoll(s.opts.BusyPoll),
		gnet.WithBusyPollGate(s.busyPollAllowed),
	}
}

// busyPollAllowed tells a busy-polling loop whether it may keep polling:
// not while a goroutine a request waits for runs (see offLoop). Measured
// with a new upstream connection per request and one core: polling through
// the dial added 62 µs at 50us and over 1 ms at 1ms to the first event.
func (s *Server) busyPollAllowed() bool { return s.offLoop.Load() == 0 }

// startOffLoop counts a goroutine a loop starts and whose work a request
// waits for (see offLoop); the goroutine must defer endOffLoop. A helper
// taking the goroutine's func would wrap it in a second closure: one more
// allocation per dial and per deferred plugin step.
func (s *Server) startOffLoop() { s.offLoop.Add(1) }

// endOffLoop uncounts a goroutine startOffLoop counted.
func (s *Server) endOffLoop() { s.offLoop.Add(-1) }

func (o *Options) setDefaults() {
	if len(o.Listen) == 0 {
		o.Listen = []string{"0.0.0.0:9080"}
	}
	if o.Loops <= 0 {
		o.Loops = runtime.GOMAXPROCS(0)
	}
	if o.MaxHead <= 0 {
		o.MaxHead = http1.DefaultMaxHead
	}
	if o.HeaderTimeout <= 0 {
		o.HeaderTimeout = 60 * time.Second
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = 60 * time.Second
	}
	if o.KeepaliveTimeout <= 0 {
		o.KeepaliveTimeout = 60 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.MaxBuffered == 0 {
		o.MaxBuffered = 1 << 20
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 60 * time.Second
	}
	if o.TLS == nil {
		o.TLS, _ = sltls.NewDialer("") // system roots: cannot fail
	}
}

// Server is the data plane. Start it once; Shutdown drains and stops it.
type Server struct {
	opts Options
	h    *handler
	// offLoop counts goroutines the loops started and whose work a request
	// waits for (dials, deferred plugin steps, re-enrolling a socket);
	// while any runs, busy-polling loops sleep instead, so that they do
	// not take the CPU that work needs.
	offLoop atomic.Int64

	booted  chan struct{}
	done    chan struct{}
	runErr  error
	engMu   sync.Mutex
	eng     gnet.Engine
	started bool
}

// New returns a Server that is not yet listening.
func New(opts Options) *Server {
	opts.setDefaults()
	s := &Server{opts: opts, booted: make(chan struct{}), done: make(chan struct{})}
	s.h = newHandler(s)
	return s
}

// Start binds the listeners and starts the event loops. It returns once the
// engine accepts connections, or the error that stopped it.
func (s *Server) Start() error {
	if s.opts.Publisher == nil {
		return errors.New("engine: no Publisher")
	}
	addrs := make([]string, len(s.opts.Listen))
	for i, a := range s.opts.Listen {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("engine: listen address %q: %w", a, err)
		}
		addrs[i] = "tcp://" + a
	}
	s.started = true
	go func() {
		defer close(s.done)
		err := gnet.Rotate(s.h, addrs, s.gnetOptions()...)
		s.runErr = err
	}()
	select {
	case <-s.booted:
		return nil
	case <-s.done:
		if s.runErr == nil {
			s.runErr = errors.New("engine: stopped before boot")
		}
		return fmt.Errorf("engine: %w", s.runErr)
	}
}

// Active returns the number of requests in flight on all loops.
func (s *Server) Active() int64 { return s.h.active() }

// ConnStats are the client connection counters nginx's stub_status
// reports (APISIX's apisix_nginx_http_current_connections).
type ConnStats struct {
	Accepted int64 // connections accepted since start
	Open     int64 // connections open now
	Writing  int64 // connections with a request in flight
	Requests int64 // requests received since start
}

// ConnStats sums the loops' counters; safe from any goroutine.
func (s *Server) ConnStats() ConnStats {
	var st ConnStats
	for _, l := range *s.h.loops.Load() {
		st.Accepted += l.accepted.Load()
		st.Open += l.open.Load() + l.tunnels.Load()
		st.Writing += l.active.Load()
		st.Requests += l.requests.Load()
	}
	return st
}

// Shutdown stops taking new requests on kept-alive connections, waits until
// the requests in flight finish or ctx ends, then stops the loops. It
// returns ctx's error when the grace period ran out with requests left.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.started {
		return nil
	}
	s.h.draining.Store(true)
	var err error
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
wait:
	for s.h.active() > 0 {
		select {
		case <-ctx.Done():
			err = ctx.Err()
			break wait
		case <-t.C:
		}
	}
	s.engMu.Lock()
	eng := s.eng
	s.engMu.Unlock()
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if e := eng.Stop(stopCtx); e != nil && err == nil {
		err = e
	}
	s.h.tunnels.closeAll()
	<-s.done
	return err
}

// readBufferCap is each loop's read buffer (gnet reads at most this much
// per read(2)). It is per loop, not per connection. Measured with 1 MiB
// request bodies: 64 KiB reads cost 503 µs of CPU per request, 1 MiB reads
// 253 µs, 256 KiB reads 210 µs (nginx 327-437 µs in the same runs); and
// 1 MiB reads made a slow client's gateway RSS grow 16 MiB (each read can
// overshoot the backpressure cap by its size) where 256 KiB gives 3.5 MiB.
const readBufferCap = 256 << 10

// gnetLogger routes gnet's own logging to slog.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) {}
func (g gnetLogger) Infof(f string, a ...any)  {}
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error("gnet: " + fmt.Sprintf(f, a...)) }

// dateHeader holds "Date: <RFC 1123 GMT>\r\n", refreshed each second.
var dateHeader atomic.Pointer[[]byte]

func init() { refreshDate(time.Now()) }

func refreshDate(now time.Time) {
	b := make([]byte, 0, 40)
	b = append(b, "Date: "...)
	b = now.UTC().AppendFormat(b, "Mon, 02 Jan 2006 15:04:05 GMT")
	b = append(b, "\r\n"...)
	dateHeader.Store(&b)
}

func serverHeader(version string) []byte {
	return []byte("Server: sluice/" + version + "\r\n")
}
