package metrics

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRouteLabel(t *testing.T) {
	f := func(name, want string, ok bool) {
		t.Helper()
		got, gotOK := routeLabel(name)
		assert.Equal(t, ok, gotOK, name)
		assert.Equal(t, want, got, name)
	}
	f(`a{route="1",code="200"}`, "1", true)
	f(`a{type="request",route="chat"}`, "chat", true)
	f(Name("a", "x", `q"\`, "route", "we\"ird\\ id\n"), "we\"ird\\ id\n", true)
	f(`a{routes="1"}`, "", false)
	f(`go_goroutines`, "", false)
	f(`a{route="unterminated`, "", false)
}

func TestRetainDropsDeletedRoutes(t *testing.T) {
	Counter("test_retain_total", "route", "keep").Inc()
	Counter("test_retain_total", "route", "gone").Inc()
	NewStatuses("test_retain_status", "route", "gone").Inc(200)
	Counter("test_retain_plain_total").Inc()

	n := Retain([]string{"keep", "other"})
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
