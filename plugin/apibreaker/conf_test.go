package apibreaker

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/plugin"
)

// TestDefaults is apisix t/plugin/api-breaker.t TESTs 2–4: the schema's
// defaults, also for an empty healthy or unhealthy object.
func TestDefaults(t *testing.T) {
	want := `{"break_response_code":502,"healthy":{"http_statuses":[200],"successes":3},"max_breaker_sec":300,"unhealthy":{"failures":3,"http_statuses":[500]}}`
	for _, in := range []string{
		`{"break_response_code":502}`,
		`{"break_response_code":502,"healthy":{}}`,
		`{"break_response_code":502,"unhealthy":{}}`,
		`{"break_response_code":502,"unhealthy":[],"_meta":{"disable":false},"policy":"unhealthy-count"}`,
	} {
		c, err := decodeConf([]byte(in))
		require.NoError(t, err, in)
		got, err := json.Marshal(c)
		require.NoError(t, err)
		assert.JSONEq(t, want, string(got), in)
	}
}

func TestConfValues(t *testing.T) {
	c, err := decodeConf([]byte(`{"break_response_code":200,"break_response_body":"","break_response_headers":[{"key":"X-A","value":"1"}],
		"max_breaker_sec":3,"unhealthy":{"http_statuses":[599,500],"failures":1},"healthy":{"http_statuses":[499,200],"successes":1e0}}`))
	require.NoError(t, err)
	assert.Equal(t, 200, c.BreakResponseCode)
	require.NotNil(t, c.BreakResponseBody)
	assert.Equal(t, "", *c.BreakResponseBody)
	assert.Equal(t, []header{{"X-A", "1"}}, c.BreakResponseHeaders)
	assert.Equal(t, int64(3), c.MaxBreakerSec)
	assert.Equal(t, []int{599, 500}, c.Unhealthy.HTTPStatuses)
	assert.Equal(t, int64(1), c.Unhealthy.Failures)
	assert.Equal(t, []int{499, 200}, c.Healthy.HTTPStatuses)
	assert.Equal(t, int64(1), c.Healthy.Successes)
}

func TestConfErrors(t *testing.T) {
	f := func(conf, want string) {
		t.Helper()
		_, err := apiBreaker{}.Compile(json.RawMessage(conf), &plugin.Env{Scope: "route err"})
		require.Error(t, err, conf)
		assert.Equal(t, "failed to check the configuration of plugin api-breaker err: "+want, err.Error(), conf)
	}
	f(`{}`, `property "break_response_code" is required`)
	f(`[1]`, `wrong type: expected object, got table`)
	f(`{"break_response_code":199}`, `property "break_response_code" validation failed: expected 199 to be at least 200`)
	f(`{"break_response_code":600}`, `property "break_response_code" validation failed: expected 600 to be at most 599`)
	f(`{"break_response_code":"502"}`, `property "break_response_code" validation failed: wrong type: expected integer, got string`)
	f(`{"break_response_code":502.5}`, `property "break_response_code" validation failed: wrong type: expected integer, got number`)
	f(`{"break_response_code":null}`, `property "break_response_code" validation failed: wrong type: expected integer, got userdata`)
	f(`{"break_response_code":200,"max_breaker_sec":-1}`, `property "max_breaker_sec" validation failed: expected -1 to be at least 3`)
	f(`{"break_response_code":200,"break_response_body":1}`, `property "break_response_body" validation failed: wrong type: expected string, got number`)
	f(`{"break_response_code":200,"max_breaker_sec":40,"unhealthy":{"http_statuses":[500,603],"failures":3}}`,
		`property "unhealthy" validation failed: property "http_statuses" validation failed: failed to validate item 2: expected 603 to be at most 599`)
	f(`{"break_response_code":200,"unhealthy":{"http_statuses":[]}}`,
		`property "unhealthy" validation failed: property "http_statuses" validation failed: expect array to have at least 1 items`)
	f(`{"break_response_code":200,"unhealthy":{"failures":0}}`,
		`property "unhealthy" validation failed: property "failures" validation failed: expected 0 to be at least 1`)
	f(`{"break_response_code":200,"unhealthy":1}`, `property "unhealthy" validation failed: wrong type: expected object, got number`)
	f(`{"break_response_code":200,"healthy":{"http_statuses":[206,206]}}`,
		`property "healthy" validation failed: property "http_statuses" validation failed: expected unique items but items 1 and 2 are equal`)
	f(`{"break_response_code":200,"healthy":{"http_statuses":[500]}}`,
		`property "healthy" validation failed: property "http_statuses" validation failed: failed to validate item 1: expected 500 to be at most 499`)
	f(`{"break_response_code":200,"healthy":{"http_statuses":"200"}}`,
		`property "healthy" validation failed: property "http_statuses" validation failed: wrong type: expected array, got string`)
	f(`{"break_response_code":200,"healthy":{"successes":0}}`,
		`property "healthy" validation failed: property "successes" validation failed: expected 0 to be at least 1`)
	f(`{"break_response_code":200,"break_response_headers":[{"key":"X-A"}]}`,
		`property "break_response_headers" validation failed: failed to validate item 1: property "value" is required`)
	f(`{"break_response_code":200,"break_response_headers":[{"key":"","value":"v"}]}`,
		`property "break_response_headers" validation failed: failed to validate item 1: property "key" validation failed: string too short, expected at least 1, got 0`)
	f(`{"break_response_code":200,"break_response_headers":[{"key":"X-A","value":"a\r\nX-Evil: 1"}]}`,
		`property "break_response_headers" validation failed: failed to validate item 1: property "value" validation failed: invalid character in header value`)
	f(`{"break_response_code":200,"break_response_headers":[{"key":"X A","value":"1"}]}`,
		`property "break_response_headers" validation failed: failed to validate item 1: property "key" validation failed: invalid character in header key`)
	f(`{"break_response_code":200,"policy":"unhealthy-ratio"}`,
		`property "policy" validation failed: "unhealthy-ratio" is not supported by sluice; use "unhealthy-count"`)
	f(`{"break_response_code":200,"policy":"x"}`, `property "policy" validation failed: matches none of the enum values`)
	f(`{"break_response_code":200} {}`, `invalid JSON: trailing data`)
}
