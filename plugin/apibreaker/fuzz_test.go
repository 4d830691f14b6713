package apibreaker

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeConf: decoding never panics, and an accepted configuration's
// canonical form decodes to the same configuration.
func FuzzDecodeConf(f *testing.F) {
	for _, s := range []string{
		`{"break_response_code":502}`,
		`{"break_response_code":502,"break_response_body":"x","break_response_headers":[{"key":"A","value":"b"}]}`,
		`{"break_response_code":200,"max_breaker_sec":3,"unhealthy":{"http_statuses":[500,503],"failures":1},"healthy":{"http_statuses":[200,206],"successes":2}}`,
		`{"break_response_code":502.0,"unhealthy":[],"healthy":{}}`,
		`{"break_response_code":1e400}`,
		`[]`, `null`, `{"break_response_code":502,"unhealthy":{"http_statuses":[500,500]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := decodeConf(raw)
		if err != nil {
			return
		}
		if c.BreakResponseCode < 200 || c.BreakResponseCode > 599 || c.MaxBreakerSec < 3 ||
			c.Unhealthy.Failures < 1 || c.Healthy.Successes < 1 ||
			len(c.Unhealthy.HTTPStatuses) == 0 || len(c.Healthy.HTTPStatuses) == 0 {
			t.Fatalf("accepted out-of-range conf %+v from %q", c, raw)
		}
		canon, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := decodeConf(canon)
		if err != nil {
			t.Fatalf("canonical form %s refused: %v", canon, err)
		}
		canon2, _ := json.Marshal(c2)
		if string(canon) != string(canon2) {
			t.Fatalf("canonical form not stable: %s vs %s", canon, canon2)
		}
		// Compile builds a response head from it without panicking.
		if _, err := (apiBreaker{}).Compile(raw, nil); err != nil {
			t.Fatalf("decoded but Compile failed: %v", err)
		}
	})
}
