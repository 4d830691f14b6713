package metrics

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSeriesLabels(t *testing.T) {
	f := func(name string, want labels, ok bool) {
		t.Helper()
		got, gotOK := seriesLabels(name)
		assert.Equal(t, ok, gotOK, name)
		assert.Equal(t, want, got, name)
	}
	f(`a{route="1",code="200"}`, labels{route: "1", hasRoute: true}, true)
	f(`a{type="request",route="chat"}`, labels{route: "chat", hasRoute: true}, true)
	f(Name("a", "x", `q"\`, "route", "we\"ird\\ id\n"), labels{route: "we\"ird\\ id\n", hasRoute: true}, true)
	f(`s{route="r",rule="0",arm="v1"}`, labels{route: "r", rule: "0", arm: "v1", hasRoute: true}, true)
	f(`a{routes="1"}`, labels{}, true)
	f(`go_goroutines`, labels{}, true)
	f(`a{route="unterminated`, labels{}, false)
	f(`a{route}`, labels{}, false)
}

func TestRetainDropsDeletedRoutes(t *testing.T) {
	Counter("test_retain_total", "route", "keep").Inc()
	Counter("test_retain_total", "route", "gone").Inc()
	NewStatuses("test_retain_status", "route", "gone").Inc(200)
	Counter("test_retain_plain_total").Inc()

	n := Retain([]string{"keep", "other"}, nil)
	assert.GreaterOrEqual(t, n, 2)
	var buf bytes.Buffer
	Set.WritePrometheus(&buf)
	out := buf.String()
	assert.Contains(t, out, `test_retain_total{route="keep"} 1`)
	assert.NotContains(t, out, `route="gone"`)
	assert.Contains(t, out, "test_retain_plain_total 1", "series without a route label stay")

	// a route created again gets fresh series
	Counter("test_retain_total", "route", "gone").Inc()
	buf.Reset()
	Set.WritePrometheus(&buf)
	assert.Contains(t, buf.String(), `test_retain_total{route="gone"} 1`)
}

// An arm removed from a live route's split loses its series; the route's
// other arms and its arm-less series stay.
func TestRetainDropsRemovedArms(t *testing.T) {
	Counter("test_arm_total", "route", "r", "rule", "0", "arm", "v1").Inc()
	Counter("test_arm_total", "route", "r", "rule", "0", "arm", "v2").Inc()
	Counter("test_arm_total", "route", "r", "rule", "1", "arm", "v1").Inc()
	Counter("test_arm_tokens_total", "route", "r", "arm", "v2").Inc()
	Counter("test_arm_tokens_total", "route", "r", "arm", "").Inc()
	Retain([]string{"r"}, []Arm{{Route: "r", Rule: "0", Name: "v1"}})
	var buf bytes.Buffer
	Set.WritePrometheus(&buf)
	out := buf.String()
	assert.Contains(t, out, `test_arm_total{route="r",rule="0",arm="v1"} 1`)
	assert.NotContains(t, out, `arm="v2"`, "v2 left the split")
	assert.NotContains(t, out, `test_arm_total{route="r",rule="1",arm="v1"}`, "rule 1 is gone")
	assert.Contains(t, out, `test_arm_tokens_total{route="r",arm=""} 1`)
}
