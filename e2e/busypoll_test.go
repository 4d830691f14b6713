package e2e

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cpuTicks is the CPU time (user + system, clock ticks) pid has used.
func cpuTicks(t testing.TB, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, err1 := strconv.Atoi(f[11]) // field 14 of stat; f[0] is field 3
	stime, err2 := strconv.Atoi(f[12])
	require.NoError(t, err1)
	require.NoError(t, err2)
	return utime + stime
}

// TestBusyPoll: with nginx_config.busy_poll the event loop keeps its core
// busy after traffic (the CPU shows it) and requests are served as usual;
// without it the same traffic costs next to no CPU. The two CPU figures are
// an order of magnitude apart, so this asserts the setting took effect, not
// a speed.
func TestBusyPoll(t *testing.T) {
	up := startUpstream(t, "u1", nil)
	routes := routesDoc(route("1", "/chat/completions", "", up.addr()))
	// traffic sends a request every 40 ms for 800 ms and returns the CPU
	// ticks (10 ms each) the gateway used meanwhile.
	traffic := func(gw *gateway) int {
		before := cpuTicks(t, gw.cmd.Process.Pid)
		for i := 0; i < 20; i++ {
			resp, err := client.Post(gw.url("/chat/completions"), "application/json", strings.NewReader(`{}`))
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			assert.Equal(t, 200, resp.StatusCode)
			time.Sleep(40 * time.Millisecond)
		}
		return cpuTicks(t, gw.cmd.Process.Pid) - before
	}

	busy := startGatewayConf(t, func(port int) string {
		c := gatewayConfig(port, 1, "")
		return strings.Replace(c, "  worker_processes: 1\n", "  worker_processes: 1\n  busy_poll: 100ms\n", 1)
	}, routes)
	assert.Contains(t, busy.log.String(), "busy polling")
	spun := traffic(busy)
	busy.stop()

	plain := startGateway(t, 1, "", routes)
	slept := traffic(plain)
	t.Logf("CPU over 800 ms of sparse traffic: busy_poll 100ms %d ticks, off %d ticks", spun, slept)
	assert.GreaterOrEqual(t, spun, 20, "the loop polled between requests")
	assert.LessOrEqual(t, slept, 10, "the loop slept between requests")
}
