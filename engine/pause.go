package engine

import (
	"context"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Backpressure for responses. gnet reads every readable socket and has no
// way to stop (gnet #712), so a fast upstream feeding a slow client would
// grow the client's outbound buffer without bound. When that buffer passes
// Options.MaxBuffered, the upstream connection is taken out of gnet: its
// descriptor is duplicated and the gnet connection closed, so nobody reads
// the socket and TCP flow control holds the upstream back. When the
// client's buffer has drained to half the cap, the descriptor is enrolled
// into the same loop again and relaying goes on. Pausing costs a few
// syscalls and happens only for clients slower than their upstream.

// resumePoll is how often loops with paused upstreams check their clients
// (gnet has no "drained" event): it bounds a paused stream to about
// MaxBuffered/2 per interval.
const resumePoll = time.Millisecond

// pauseUpstream takes uc out of the loop after a relay left the client's
// outbound buffer over the cap. It must be the last thing uc's OnTraffic
// does: it returns gnet.Close, and gnet closes its conn (not the socket,
// whose duplicate uc keeps) right after. It returns gnet.None, changing
// nothing, when uc still has unparsed bytes buffered (a partial chunk-size
// line): the next read will try again.
func (l *loop) pauseUpstream(uc *upConn) gnet.Action {
	fd, ok := detachable(uc.c)
	if !ok {
		return gnet.None // keep buffering rather than fail the stream
	}
	uc.paused, uc.pausedFD = true, fd
	uc.ex.deadline = l.now + int64(l.opts.SendTimeout) // nginx send_timeout
	if cl := uc.ex.cl; cl != nil && cl.c != nil {
		uc.ex.pausedOut = unsent(cl.c)
	}
	l.paused = append(l.paused, uc)
	l.notePaused()
	return gnet.Close
}

// detachable duplicates c's descriptor when nothing is buffered on c,
// either way (so closing the gnet conn loses no byte: gnet drops what it
// could not write at once); ok is false otherwise.
func detachable(c gnet.Conn) (fd int, ok bool) {
	if c.InboundBuffered() > 0 || c.OutboundBuffered() > 0 {
		return -1, false
	}
	if buf, _ := c.Peek(-1); len(buf) > 0 {
		return -1, false
	}
	fd, err := c.Dup()
	return fd, err == nil
}

// notePaused counts one more paused connection and wakes the resume
// goroutine for the first.
func (l *loop) notePaused() {
	if l.pausedN.Add(1) == 1 {
		select {
		case l.h.pauseSignal <- struct{}{}:
		default:
		}
	}
}

// removeFrom removes x from list (order not kept) and reports whether it
// was there.
func removeFrom[T comparable](list []T, x T) ([]T, bool) {
	var zero T
	for i, y := range list {
		if y == x {
			last := len(list) - 1
			list[i] = list[last]
			list[last] = zero
			return list[:last], true
		}
	}
	return list, false
}

// unpause removes uc from the paused list (it is resuming or dropped).
func (l *loop) unpause(uc *upConn) {
	var found bool
	if l.paused, found = removeFrom(l.paused, uc); found {
		l.pausedN.Add(-1)
	}
	uc.paused = false
}

// unsent is what c still has to send: gnet's outbound buffer plus the
// bytes in the socket's send queue (SIOCOUTQ), so a peer that reads is
// seen even while the kernel's buffer, not gnet's, is draining.
func unsent(c gnet.Conn) int {
	n := c.OutboundBuffered()
	if q, err := unix.IoctlGetInt(c.Fd(), unix.SIOCOUTQ); err == nil {
		n += q
	}
	return n
}

// stillSending reports, for an exchange past its send deadline with one
// side paused, whether the other side's peer took bytes since the last
// check (nginx send_timeout runs between two successive writes, not over
// the whole drain); it then moves the deadline on.
func (l *loop) stillSending(ex *exchange) bool {
	var c gnet.Conn
	timeout := l.opts.SendTimeout
	switch {
	case ex.up != nil && (ex.up.paused || ex.up.resuming) && ex.cl != nil:
		c = ex.cl.c // a response waits for the client
	case ex.cl != nil && (ex.cl.paused || ex.cl.resuming) && ex.up != nil:
		c, timeout = ex.up.c, orDefault(ex.ups.Timeouts.Send) // a body waits for the upstream
	}
	if c == nil {
		return false
	}
	n := unsent(c)
	if n >= ex.pausedOut {
		return false
	}
	ex.pausedOut = n
	ex.deadline = l.now + int64(timeout)
	return true
}

// awaitingBody reports whether ex waits for request body bytes from its
// client, the upstream having taken all sent so far (client_body_timeout
// runs, not the upstream's send timeout).
func (l *loop) awaitingBody(ex *exchange) bool {
	cl, uc := ex.cl, ex.up
	return ex.phase == exSending && !ex.reqDone && len(ex.stash) == 0 &&
		cl != nil && cl.c != nil && !cl.paused && !cl.resuming &&
		uc != nil && uc.c != nil && uc.c.OutboundBuffered() == 0
}

// closePaused releases the socket of a paused upstream that will not
// resume (client gone, timeout).
func (l *loop) closePaused(uc *upConn) {
	l.unpause(uc)
	if uc.pausedFD >= 0 {
		_ = syscall.Close(uc.pausedFD)
		uc.pausedFD = -1
	}
}

// resumePaused runs on the loop every resumePoll while it has paused
// upstreams: each whose client drained to half the cap is enrolled again.
func (l *loop) resumePaused() {
	l.tick()
	l.resumeClients()
	l.retryHandoffs()
	limit := l.opts.MaxBuffered / 2
	for i := 0; i < len(l.paused); {
		uc := l.paused[i]
		ex := uc.ex
		if ex == nil || ex.up != uc || ex.cl == nil || ex.cl.closed || ex.cl.c == nil {
			l.closePaused(uc) // swaps the last into i
			continue
		}
		if ex.cl.c.OutboundBuffered() > limit {
			i++
			continue
		}
		fd := uc.pausedFD
		uc.pausedFD = -1
		l.unpause(uc)
		uc.resuming = true
		ex.deadline = l.now + int64(orDefault(ex.ups.Timeouts.Read))
		l.reenroll(fd, uc, func() {
			uc.resuming = false
			uc.dead = true
			if ex := uc.ex; ex != nil && ex.up == uc {
				l.fail(ex, 502, "upstream lost while paused")
			}
		})
	}
}

// reenroll hands a paused socket back to this loop with ctx as the gnet
// conn's context (OnOpen resumes it); Enroll's result is awaited off the
// loop, and a failure runs failed on the loop.
func (l *loop) reenroll(fd int, ctx any, failed func()) {
	el := l.el
	l.h.s.startOffLoop()
	go func() {
		defer l.h.s.endOffLoop()
		nc, err := fdConn(fd, "paused")
		if err == nil {
			var ch <-chan gnet.RegisteredResult
			ch, err = el.Enroll(gnet.NewContext(context.Background(), ctx), nc)
			if err == nil {
				err = (<-ch).Err
			} else {
				nc.Close()
			}
		}
		if err != nil {
			_ = el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
				l.tick()
				failed()
				return nil
			}))
		}
	}()
}

// resumeLoop runs on its own goroutine for the server's lifetime: woken
// when a loop pauses its first upstream, it has every loop with paused
// upstreams check them each resumePoll, until none is paused.
func (h *handler) resumeLoop(ctx context.Context) {
	t := time.NewTicker(resumePoll)
	t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.pauseSignal:
		}
		t.Reset(resumePoll)
		for {
			any := false
			for _, l := range *h.loops.Load() {
				if l.pausedN.Load() > 0 {
					any = true
					if l.resumeQueued.CompareAndSwap(false, true) {
						_ = l.el.Execute(context.Background(), l.resumeFn)
					}
				}
			}
			if !any {
				break
			}
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		t.Stop()
	}
}

// Backpressure for request bodies: the mirror image. When a client sends a
// body faster than its upstream reads it and the upstream connection's
// outbound buffer passes MaxBuffered, the client socket is taken out of
// gnet the same way until the upstream drained half. While a client is
// paused its gnet conn is gone (cl.c == nil): whatever would write to it
// first brings it back (resumeClientNow) or drops it (dropPausedClient).

// pauseClient takes cl out of the loop; it must be the last thing cl's
// OnTraffic does (it returns gnet.Close). It changes nothing and returns
// gnet.None when bytes are still buffered on cl.
func (l *loop) pauseClient(cl *client) gnet.Action {
	fd, ok := detachable(cl.c)
	if !ok {
		return gnet.None
	}
	cl.paused, cl.pausedFD = true, int32(fd)
	if cl.ex.phase != exConnecting { // (a stashed body: the connect deadline runs)
		cl.ex.deadline = l.now + int64(orDefault(cl.ex.ups.Timeouts.Send))
	}
	if uc := cl.ex.up; uc != nil && uc.c != nil {
		cl.ex.pausedOut = unsent(uc.c)
	}
	l.pausedClients = append(l.pausedClients, cl)
	l.notePaused()
	return gnet.Close
}

func (l *loop) unpauseClient(cl *client) {
	var found bool
	if l.pausedClients, found = removeFrom(l.pausedClients, cl); found {
		l.pausedN.Add(-1)
	}
	cl.paused = false
}

// dropPausedClient closes a paused client for good and releases its state.
func (l *loop) dropPausedClient(cl *client) {
	l.unpauseClient(cl)
	if cl.pausedFD >= 0 {
		_ = syscall.Close(int(cl.pausedFD))
		cl.pausedFD = -1
	}
	l.clientClosed(cl)
}

// resumeClients enrolls again each paused client whose upstream drained to
// half the cap (called from resumePaused).
func (l *loop) resumeClients() {
	limit := l.opts.MaxBuffered / 2
	for i := 0; i < len(l.pausedClients); {
		cl := l.pausedClients[i]
		ex := cl.ex
		if ex == nil || ex.up == nil {
			l.dropPausedClient(cl) // swaps the last into i
			continue
		}
		if len(ex.stash) > 0 {
			i++ // its upstream is still connecting: pumpStash resumes it
			continue
		}
		if uc := ex.up; uc.c != nil && uc.c.OutboundBuffered() > limit {
			i++
			continue
		}
		l.resumeClientNow(cl)
	}
}

// resumeClientNow starts enrolling a paused client again.
func (l *loop) resumeClientNow(cl *client) {
	if !cl.paused {
		return
	}
	fd := int(cl.pausedFD)
	cl.pausedFD = -1
	l.unpauseClient(cl)
	cl.resuming = true
	l.reenroll(fd, cl, func() {
		cl.resuming = false
		if ex := cl.ex; ex != nil && ex.up != nil {
			l.dropUpstream(ex.up)
		}
		l.clientClosed(cl)
	})
}

// clientResumed runs when a paused client's socket joined the loop again.
func (l *loop) clientResumed(cl *client, c gnet.Conn) {
	l.tick()
	cl.c = c
	cl.resuming = false
	if cl.closed {
		c.Close()
		return
	}
	if msg, ok := l.pendingAnswer[cl]; ok {
		// its exchange failed while it was away: answer, then drain
		delete(l.pendingAnswer, cl)
		l.wbuf = append(l.wbuf[:0], msg...)
		l.writeFinal(cl, false, false)
		return
	}
	ex := cl.ex
	if ex == nil {
		return
	}
	if ex.phase == exSending { // (a body sent whole meanwhile waits for its response: the read deadline runs)
		ex.deadline = l.now + int64(orDefault(ex.ups.Timeouts.Send))
		ex.bodyAt = l.now // held back by sluice, not the client
	}
	// An upstream that answered while the client was away: relay now (its
	// buffered bytes would not raise another OnTraffic).
	switch uc := ex.up; {
	case uc == nil:
	case uc.salvaged: // it closed meanwhile
		l.relaySalvaged(uc)
	case uc.c != nil && uc.c.InboundBuffered() > 0:
		if l.upstreamTraffic(uc) == gnet.Close && uc.c != nil {
			_ = l.el.Close(uc.c)
		}
	}
}
