package engine

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/router"
)

// TestSalvagedAnswerClosesClient forces the interleaving where an
// upstream's early answer is salvaged from inside the write of the body's
// last part: the upstream answered 413 and reset while the loop was busy,
// and the loop then reads the client's last body bytes before the
// upstream's answer. The answer must close the client connection: kept
// alive, the body bytes just written (not yet taken off the client's
// buffer) were parsed as the client's next request, so a request hidden in
// a body reached an upstream unrouted and unchecked.
func TestSalvagedAnswerClosesClient(t *testing.T) {
	answer := make(chan struct{})
	up := acceptEach(t, func(c net.Conn) {
		r := bufio.NewReaderSize(c, 4<<10)
		if _, err := http.ReadRequest(r); err != nil {
			return
		}
		<-answer
		io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n\r\nnope")
		// returning closes c with most of the body unread: a reset
	})
	var smuggled atomic.Int64
	hidden := serveRequests(t, func(c net.Conn) bool {
		smuggled.Add(1)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	blocked, release := make(chan struct{}), make(chan struct{})
	hook := func(rt *router.Route) {
		if rt.ID == "blocker" {
			close(blocked)
			<-release // the loop stands still while both events queue up
		}
	}
	testHookDispatch.Store(&hook)
	defer testHookDispatch.Store(nil)
	g := startTestGateway(t, 1, snapshot(routeTo("upload", "/upload", up), routeTo("blocker", "/block", up),
		routeTo("hidden", "/smuggled", hidden)))

	last := "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	first := strings.Repeat("a", 256<<10)
	c := dialSend(t, g.addr, fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(first)+len(last), first))
	time.Sleep(100 * time.Millisecond) // the head and the first part went upstream
	dialSend(t, g.addr, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case <-blocked:
	case <-time.After(5 * time.Second):
		t.Fatal("the blocking request was not dispatched")
	}
	_, err := io.WriteString(c, last) // ready first: read first once the loop runs
	require.NoError(t, err)
	time.Sleep(20 * time.Millisecond)
	close(answer) // then the 413 and the reset
	time.Sleep(50 * time.Millisecond)
	close(release)

	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, 413, resp.StatusCode, "%s", body)
	rest, err := io.ReadAll(r)
	assert.NoError(t, err, "the connection closes after the salvaged answer")
	assert.Empty(t, string(rest), "nothing else is answered on the connection")
	assert.Zero(t, smuggled.Load(), "a request hidden in the body reached an upstream")
}
