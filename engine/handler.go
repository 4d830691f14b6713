package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// sweepEvery is how often each loop checks deadlines (header, keep-alive,
// upstream timeouts, idle pool connections, lingering closes).
const sweepEvery = 100 * time.Millisecond

// handler is the gnet EventHandler. Its callbacks run on the event loop of
// the connection concerned, except OnBoot, OnShutdown and OnTick.
type handler struct {
	gnet.BuiltinEventEngine
	s *Server

	draining atomic.Bool

	mu    sync.Mutex               // guards creation of loops
	loops atomic.Pointer[[]*loop]  // copy-on-write list, read by OnOpen and OnTick
	byEL  map[gnet.EventLoop]*loop // under mu
	ticks atomic.Int64

	pauseSignal chan struct{} // a loop paused its first upstream (see pause.go)
	tunnels     tunnelSet     // WebSocket tunnels handed off the loops
	stopResume  context.CancelFunc
}

func newHandler(s *Server) *handler {
	h := &handler{s: s, byEL: make(map[gnet.EventLoop]*loop), pauseSignal: make(chan struct{}, 1)}
	empty := []*loop{}
	h.loops.Store(&empty)
	return h
}

func (h *handler) OnBoot(eng gnet.Engine) gnet.Action {
	ctx, cancel := context.WithCancel(context.Background())
	h.stopResume = cancel
	go h.resumeLoop(ctx)
	h.s.engMu.Lock()
	h.s.eng = eng
	h.s.engMu.Unlock()
	close(h.s.booted)
	return gnet.None
}

// loopOf returns the per-loop state of el, creating it on first use. It is
// called once per connection (OnOpen), never per request.
func (h *handler) loopOf(el gnet.EventLoop) *loop {
	for _, l := range *h.loops.Load() {
		if l.el == el {
			return l
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if l, ok := h.byEL[el]; ok {
		return l
	}
	l := newLoop(h, el)
	l.idx = len(*h.loops.Load())
	l.alog = h.s.opts.AccessLog.Loop(l.idx)
	h.byEL[el] = l
	list := append(append([]*loop{}, *h.loops.Load()...), l)
	h.loops.Store(&list)
	return l
}

// OnShutdown stops the resume goroutine.
func (h *handler) OnShutdown(gnet.Engine) {
	if h.stopResume != nil {
		h.stopResume()
	}
}

func (h *handler) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	switch x := c.Context().(type) {
	case *upConn:
		x.l.upstreamOpened(x, c)
		return nil, gnet.None
	case *client: // back from a backpressure pause
		x.l.clientResumed(x, c)
		return nil, gnet.None
	}
	l := h.loopOf(c.EventLoop())
	l.clientOpened(c)
	return nil, gnet.None
}

func (h *handler) OnTraffic(c gnet.Conn) gnet.Action {
	switch x := c.Context().(type) {
	case *client:
		return x.l.clientTraffic(x)
	case *upConn:
		return x.l.upstreamTraffic(x)
	}
	return gnet.Close
}

func (h *handler) OnClose(c gnet.Conn, err error) gnet.Action {
	switch x := c.Context().(type) {
	case *client:
		x.l.clientClosed(x)
	case *upConn:
		x.l.upstreamClosed(x, err)
	}
	c.SetContext(nil)
	return gnet.None
}

// OnTick runs on its own goroutine: it hands each loop a sweep through
// Execute and refreshes the cached Date header once a second.
func (h *handler) OnTick() (time.Duration, gnet.Action) {
	now := time.Now()
	if h.ticks.Add(1)%int64(time.Second/sweepEvery) == 0 {
		refreshDate(now)
	}
	for _, l := range *h.loops.Load() {
		if l.sweepQueued.CompareAndSwap(false, true) {
			_ = l.el.Execute(context.Background(), l.sweepFn)
		}
	}
	return sweepEvery, gnet.None
}

// active sums the loops' in-flight counters (each loop counts its own, so
// the request path touches no cache line shared between loops).
func (h *handler) active() int64 {
	var n int64
	for _, l := range *h.loops.Load() {
		n += l.active.Load()
	}
	return n
}
