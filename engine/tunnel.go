package engine

import (
	"github.com/panjf2000/gnet/v2"
)

// startTunnel completes a WebSocket upgrade: the 101 head goes to the
// client, and from here on both connections carry raw bytes both ways
// until either closes. The upstream connection is never pooled again.
func (l *loop) startTunnel(ex *exchange, buf []byte, n int) bool {
	cl, uc := ex.cl, ex.up
	ex.respStarted = true
	l.wbuf = l.appendResponseHead(l.wbuf[:0], ex)
	l.wbuf = append(l.wbuf, buf[n:]...)
	uc.c.Discard(len(buf))
	// hand the two connections to each other and end the exchange; the
	// tunnel closes after the upstream's read timeout with no byte either
	// way (nginx proxy_read_timeout on an upgraded connection)
	uc.tunnelIdle = int64(orDefault(ex.ups.Timeouts.Read))
	cl.deadline = l.now + uc.tunnelIdle
	ex.up = nil
	uc.ex = nil
	uc.tunnel = cl
	l.endExchange(ex)
	cl.state = csTunnel
	cl.ex = nil
	cl.tunnelUp = uc
	cl.write(l.wbuf)
	if cl.closed {
		return false
	}
	// bytes the client sent after its upgrade request
	if cl.c.InboundBuffered() > 0 {
		l.tunnelFromClient(cl)
	}
	return false
}

func (l *loop) tunnelFromClient(cl *client) gnet.Action {
	uc := cl.tunnelUp
	if uc == nil || uc.dead {
		cl.c.Discard(-1)
		return gnet.Close
	}
	buf, _ := cl.c.Peek(-1)
	if len(buf) == 0 {
		return gnet.None
	}
	cl.deadline = l.now + uc.tunnelIdle
	uc.c.Write(buf)
	if cl.closed {
		return gnet.None
	}
	cl.c.Discard(len(buf))
	return gnet.None
}

func (l *loop) tunnelFromUpstream(uc *upConn) gnet.Action {
	cl := uc.tunnel
	if cl == nil || cl.closed || cl.c == nil {
		uc.dead = true
		return gnet.Close
	}
	buf, _ := uc.c.Peek(-1)
	if len(buf) == 0 {
		return gnet.None
	}
	cl.deadline = l.now + uc.tunnelIdle
	cl.write(buf)
	if uc.dead {
		return gnet.None
	}
	uc.c.Discard(len(buf))
	return gnet.None
}
