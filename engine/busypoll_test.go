//go:build linux && !poll_opt

package engine

import (
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	errorx "github.com/panjf2000/gnet/v2/pkg/errors"
	"github.com/panjf2000/gnet/v2/pkg/netpoll"
	"github.com/panjf2000/gnet/v2/pkg/queue"
	"github.com/sluice-gw/sluice/model"
	"github.com/sluice-gw/sluice/router"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The busy-poll window is checked through the CPU the process burns: a
// poller that keeps polling is a thread that never sleeps. The thresholds
// are far apart (a spinning thread on a loaded 2-core machine still gets a
// large share of a core; a sleeping one gets none), so the test asserts the
// behaviour, not a speed.

// cpuTime is the CPU time the test process used so far.
func cpuTime(t *testing.T) time.Duration {
	var ru unix.Rusage
	require.NoError(t, unix.Getrusage(unix.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuOver is the CPU time the process uses during the next d.
func cpuOver(t *testing.T, d time.Duration) time.Duration {
	before := cpuTime(t)
	time.Sleep(d)
	return cpuTime(t) - before
}

// pollerWithSocket runs a patched gnet poller with busy-poll window d and a
// socket registered on it; writing to the returned fd is a socket event for
// the poller. The poller stops when the test ends.
func pollerWithSocket(t *testing.T, d time.Duration) (*netpoll.Poller, int) {
	return pollerWithHook(t, d, nil)
}

// pollerWithHook is pollerWithSocket with hook run by every socket event's
// callback, on the polling goroutine.
func pollerWithHook(t *testing.T, d time.Duration, hook func()) (*netpoll.Poller, int) {
	p, err := netpoll.OpenPoller()
	require.NoError(t, err)
	p.SetBusyPoll(d)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	buf := make([]byte, 64)
	require.NoError(t, p.AddRead(&netpoll.PollAttachment{FD: fds[0]}, false))
	done := make(chan error, 1)
	go func() {
		done <- p.Polling(func(fd int, _ netpoll.IOEvent, _ netpoll.IOFlags) error {
			_, _ = unix.Read(fd, buf) // level-triggered: drain, or it fires again
			if hook != nil {
				hook()
			}
			return nil
		})
	}()
	t.Cleanup(func() {
		_ = p.Trigger(queue.HighPriority, func(any) error { return errorx.ErrEngineShutdown }, nil)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("poller did not stop")
		}
		_ = p.Close()
		unix.Close(fds[0])
		unix.Close(fds[1])
	})
	time.Sleep(20 * time.Millisecond) // the poller starts and sleeps
	return p, fds[1]
}

func TestBusyPollWindow(t *testing.T) {
	const window = 400 * time.Millisecond
	const spinning, sleeping = 60 * time.Millisecond, 30 * time.Millisecond

	t.Run("off: the loop sleeps at once after a socket event", func(t *testing.T) {
		_, w := pollerWithSocket(t, 0)
		_, err := unix.Write(w, []byte("x"))
		require.NoError(t, err)
		time.Sleep(20 * time.Millisecond)
		assert.Less(t, cpuOver(t, 250*time.Millisecond), sleeping)
	})

	t.Run("on: the loop polls for the window after a socket event, then sleeps", func(t *testing.T) {
		_, w := pollerWithSocket(t, window)
		assert.Less(t, cpuOver(t, 100*time.Millisecond), sleeping, "idle before any socket event")
		_, err := unix.Write(w, []byte("x"))
		require.NoError(t, err)
		time.Sleep(20 * time.Millisecond)
		assert.Greater(t, cpuOver(t, 250*time.Millisecond), spinning, "polling inside the window")
		time.Sleep(window) // the window has passed
		assert.Less(t, cpuOver(t, 250*time.Millisecond), sleeping, "asleep after the window")
	})

	t.Run("on: a socket event inside the window starts it again", func(t *testing.T) {
		const long = 3 * window / 2
		_, w := pollerWithSocket(t, long)
		_, err := unix.Write(w, []byte("x"))
		require.NoError(t, err)
		time.Sleep(long * 3 / 4)
		_, err = unix.Write(w, []byte("y"))
		second := time.Now()
		require.NoError(t, err)
		time.Sleep(time.Until(second.Add(long / 2))) // past the first window, inside the second
		assert.Greater(t, cpuOver(t, 150*time.Millisecond), spinning*150/250, "polling in the renewed window")
	})

	t.Run("on: a goroutine a callback starts runs at once, not after a preemption", func(t *testing.T) {
		// One P: the spinning loop holds it, so the goroutine runs only if
		// the loop yields (once per idle period) or is preempted (10 ms+).
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		delays := make(chan time.Duration, 8)
		startOne := func() {
			start := time.Now()
			go func() { delays <- time.Since(start) }()
		}
		p, w := pollerWithHook(t, time.Second, startOne)
		wait := func(what string) {
			t.Helper()
			select {
			case d := <-delays:
				assert.Less(t, d, 5*time.Millisecond, what)
			case <-time.After(5 * time.Second):
				t.Fatal("the goroutine never ran: " + what)
			}
			time.Sleep(20 * time.Millisecond)
		}
		for i := 0; i < 5; i++ {
			_, err := unix.Write(w, []byte("x"))
			require.NoError(t, err)
			wait(fmt.Sprintf("started by socket callback %d", i))
		}
		// inside the window (the last write opened it): a task's goroutine
		for i := 0; i < 3; i++ {
			require.NoError(t, p.Trigger(queue.HighPriority, func(any) error { startOne(); return nil }, nil))
			wait(fmt.Sprintf("started by task %d", i))
		}
	})

	t.Run("on: the gate closed, the loop sleeps; opened, it polls", func(t *testing.T) {
		var open atomic.Bool
		p, w := pollerWithSocket(t, window)
		p.SetBusyPollGate(open.Load) // read on every poll; safe to set before the event
		_, err := unix.Write(w, []byte("x"))
		require.NoError(t, err)
		time.Sleep(20 * time.Millisecond)
		assert.Less(t, cpuOver(t, 150*time.Millisecond), sleeping, "gate closed")
		open.Store(true)
		_, err = unix.Write(w, []byte("y"))
		require.NoError(t, err)
		time.Sleep(20 * time.Millisecond)
		assert.Greater(t, cpuOver(t, 150*time.Millisecond), spinning*150/250, "gate open")
	})

	t.Run("on: a task alone (the sweep ticker) does not start a window", func(t *testing.T) {
		p, _ := pollerWithSocket(t, window)
		ran := make(chan struct{})
		require.NoError(t, p.Trigger(queue.HighPriority, func(any) error { close(ran); return nil }, nil))
		<-ran
		time.Sleep(20 * time.Millisecond)
		assert.Less(t, cpuOver(t, 250*time.Millisecond), sleeping)
	})
}

// TestOffLoopGate: while a goroutine counted by startOffLoop runs, busy
// polling is not allowed; afterwards it is again.
func TestOffLoopGate(t *testing.T) {
	s := New(Options{Publisher: &router.Publisher{}, BusyPoll: time.Millisecond})
	assert.True(t, s.busyPollAllowed())
	s.startOffLoop()
	s.startOffLoop()
	assert.False(t, s.busyPollAllowed(), "two goroutines running")
	s.endOffLoop()
	assert.False(t, s.busyPollAllowed(), "one goroutine running")
	s.endOffLoop()
	assert.True(t, s.busyPollAllowed(), "both finished")

	var o gnet.Options
	for _, opt := range s.gnetOptions() {
		opt(&o)
	}
	require.NotNil(t, o.BusyPollGate, "the gate reaches gnet")
	assert.True(t, o.BusyPollGate())
}

// TestBusyPollOption: Options.BusyPoll reaches the event loops' poller.
func TestBusyPollOption(t *testing.T) {
	s := New(Options{Publisher: &router.Publisher{}, BusyPoll: 300 * time.Microsecond})
	var o gnet.Options
	for _, opt := range s.gnetOptions() {
		opt(&o)
	}
	assert.Equal(t, 300*time.Microsecond, o.BusyPoll)
	assert.Equal(t, s.opts.Loops, o.NumEventLoop)
}

// TestOffLoopWork: a deferred plugin step and a pending upstream dial keep
// busy polling off while a request waits for them, and allow it again
// once they are done.
func TestOffLoopWork(t *testing.T) {
	post := func(addr, path string) chan int {
		done := make(chan int, 1)
		go func() {
			resp, err := http.Post("http://"+addr+path, "application/json", strings.NewReader(`{}`))
			if err != nil {
				done <- -1
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		return done
	}
	t.Run("deferred step", func(t *testing.T) {
		g, _ := gatedGateway(t)
		done := post(g.addr, "/chat/completions")
		require.Eventually(t, func() bool { return !g.srv.busyPollAllowed() }, 5*time.Second, time.Millisecond, "off while the step waits")
		gate <- 0
		assert.Equal(t, 200, <-done)
		require.Eventually(t, g.srv.busyPollAllowed, 5*time.Second, time.Millisecond, "on again")
	})
	t.Run("dial", func(t *testing.T) {
		// a listener with a full accept queue: the gateway's SYN goes
		// unanswered and its dial waits for the connect timeout
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		t.Cleanup(func() { unix.Close(fd) })
		require.NoError(t, unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
		require.NoError(t, unix.Listen(fd, 0))
		sa, err := unix.Getsockname(fd)
		require.NoError(t, err)
		addr := fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
		for i := 0; i < 2; i++ {
			if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
				t.Cleanup(func() { c.Close() })
			}
		}
		r := routeTo("d", "/d", addr)
		r.Upstream.Timeout = &model.Timeout{Connect: 1, Send: 2, Read: 2}
		g := startTestGateway(t, 1, snapshot(r))
		done := post(g.addr, "/d")
		require.Eventually(t, func() bool { return !g.srv.busyPollAllowed() }, 5*time.Second, time.Millisecond, "off while the dial waits")
		assert.Equal(t, 504, <-done, "the connect timed out")
		require.Eventually(t, g.srv.busyPollAllowed, 5*time.Second, time.Millisecond, "on again")
	})
}
