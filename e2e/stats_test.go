package e2e

import (
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStatsShowsTheSplit: `sluice stats --once` against the real binary's
// metrics endpoint shows the route's arms with their configured weights
// and the share they really get while traffic flows.
func TestStatsShowsTheSplit(t *testing.T) {
	stable, canary := startUpstream(t, "stable", nil), startUpstream(t, "canary", nil)
	metricsPort := freePort(t)
	doc := routesDoc(route("chat", "/chat/completions", fmt.Sprintf(`    plugins:
      prometheus: {}
      traffic-split:
        rules:
          - weighted_upstreams:
              - upstream: {name: stable, type: roundrobin, nodes: {%q: 1}}
                weight: 80
              - upstream: {name: canary, type: roundrobin, nodes: {%q: 1}}
                weight: 20
`, stable.addr(), canary.addr()), stable.addr()))
	g := startGatewayConf(t, func(port int) string {
		return gatewayConfig(port, 1, "") + fmt.Sprintf("plugin_attr:\n  prometheus:\n    export_addr: {ip: 127.0.0.1, port: %d}\n", metricsPort)
	}, doc)
	g.waitListening("127.0.0.1:" + strconv.Itoa(metricsPort))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // one keep-alive client: one loop, an exact 80/20 rotation
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := client.Get(g.url("/chat/completions"))
			if err == nil {
				resp.Body.Close()
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	waitFor(t, 5*time.Second, "traffic", func() bool { return canary.count() > 5 })

	url := fmt.Sprintf("http://127.0.0.1:%d/apisix/prometheus/metrics", metricsPort)
	out, err := exec.Command(sluiceBin, "stats", "--once", "--interval", "1s", "--url", url).CombinedOutput()
	require.NoError(t, err, "%s", out)
	text := string(out)
	t.Logf("sluice stats --once:\n%s", text)
	assert.Contains(t, text, "chat")
	row := func(arm string) (weight string, share float64) {
		m := regexp.MustCompile(`(?m)^\s+0/` + arm + `\s+(\d+)\s+([\d.]+)%`).FindStringSubmatch(text)
		require.NotNil(t, m, "a row for arm %s in\n%s", arm, text)
		f, _ := strconv.ParseFloat(m[2], 64)
		return m[1], f
	}
	w, share := row("stable")
	assert.Equal(t, "80", w, "configured weight of the stable arm")
	assert.InDelta(t, 80, share, 3, "observed share of the 80 arm")
	w, share = row("canary")
	assert.Equal(t, "20", w, "configured weight of the canary arm")
	assert.InDelta(t, 20, share, 3, "observed share of the 20 arm")

	// a deleted route's series leave the endpoint (no growth with churn)
	close(stop)
	wg.Wait()
	stop = make(chan struct{}) // for the deferred close
	scrape := func() string {
		resp, err := client.Get(url)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	require.Contains(t, scrape(), `sluice_split_requests_total{route="chat"`)

	// the canary is finished: its arm leaves the split, and its series (the
	// weight gauge too) leave the endpoint while the route's stay
	g.writeRoutes(routesDoc(route("chat", "/chat/completions", fmt.Sprintf(`    plugins:
      prometheus: {}
      traffic-split:
        rules:
          - weighted_upstreams:
              - upstream: {name: stable, type: roundrobin, nodes: {%q: 1}}
                weight: 100
`, stable.addr()), stable.addr())))
	waitFor(t, 10*time.Second, "the canary arm's series to go", func() bool { return !strings.Contains(scrape(), `arm="canary"`) })
	after := scrape()
	require.Contains(t, after, `apisix_upstream_status{name="/apisix/routes/chat"`)
	assert.Contains(t, after, `sluice_split_weight{route="chat",rule="0",arm="stable"} 100`)
	assert.Contains(t, after, `sluice_split_requests_total{route="chat",rule="0",arm="stable"}`)
	assert.Contains(t, after, `apisix_http_status{route="chat"`)

	g.writeRoutes(routesDoc(route("other", "/other", "", stable.addr())))
	waitFor(t, 10*time.Second, "the chat route's series to go", func() bool { return !strings.Contains(scrape(), `route="chat"`) })
	assert.NotContains(t, scrape(), `apisix_upstream_status{name="/apisix/routes/chat"`, "its upstream's node health went too")
}
