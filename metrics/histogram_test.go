package metrics

import (
	"bytes"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// histLines is the export's lines of family.
func histLines(t *testing.T, family string) []string {
	t.Helper()
	var b bytes.Buffer
	WritePrometheus(&b)
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(l, family+"_") || strings.HasPrefix(l, "# HELP "+family+" ") || strings.HasPrefix(l, "# TYPE "+family+" ") {
			out = append(out, l)
		}
	}
	return out
}

func TestHistogramExport(t *testing.T) {
	h := NewHistogram("test_hist_seconds", []float64{0.5, 1, 30000}, "route", `a"b`)
	assert.Same(t, h, NewHistogram("test_hist_seconds", []float64{0.5, 1, 30000}, "route", `a"b`))
	for _, v := range []float64{0.25, 0.5, 0.75, 2, 40000, math.NaN(), -1} {
		h.Update(v)
	}
	NewHistogram("test_hist_seconds", []float64{1}).Update(3)
	assert.Equal(t, []string{
		"# HELP test_hist_seconds test_hist_seconds",
		"# TYPE test_hist_seconds histogram",
		`test_hist_seconds_bucket{le="1"} 0`,
		`test_hist_seconds_bucket{le="+Inf"} 1`,
		`test_hist_seconds_sum 3`,
		`test_hist_seconds_count 1`,
		`test_hist_seconds_bucket{route="a\"b",le="0.5"} 2`,
		`test_hist_seconds_bucket{route="a\"b",le="1"} 3`,
		`test_hist_seconds_bucket{route="a\"b",le="30000"} 4`,
		`test_hist_seconds_bucket{route="a\"b",le="+Inf"} 5`,
		`test_hist_seconds_sum{route="a\"b"} 40003.5`,
		`test_hist_seconds_count{route="a\"b"} 5`,
	}, histLines(t, "test_hist_seconds"))
}

// Updates racing from several goroutines are all counted, the sum too
// (the values add exactly in binary).
func TestHistogramConcurrentUpdates(t *testing.T) {
	h := NewHistogram("test_hist_race", SecondsBuckets)
	const workers, each = 4, 5000
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				h.Update(0.25)
			}
		}()
	}
	wg.Wait()
	lines := histLines(t, "test_hist_race")
	assert.Contains(t, lines, `test_hist_race_bucket{le="0.2"} 0`)
	assert.Contains(t, lines, `test_hist_race_bucket{le="0.5"} 20000`)
	assert.Contains(t, lines, `test_hist_race_count 20000`)
	assert.Contains(t, lines, `test_hist_race_sum 5000`)
}

func TestHistogramUpdateDoesNotAllocate(t *testing.T) {
	h := NewHistogram("test_hist_alloc", LatencyBuckets)
	assert.Zero(t, testing.AllocsPerRun(1000, func() { h.Update(12.5) }))
}

func TestRetainDropsHistograms(t *testing.T) {
	keep := NewHistogram("test_retain_hist", SecondsBuckets, "route", "keep", "arm", "a")
	gone := NewHistogram("test_retain_hist", SecondsBuckets, "route", "keep", "arm", "b")
	NewHistogram("test_retain_hist", SecondsBuckets, "route", "gone").Update(1)
	keep.Update(1)
	gone.Update(1)
	require.GreaterOrEqual(t, Retain([]string{"keep"}, []Arm{{Route: "keep", Name: "a"}}), 2)
	gone.Update(1) // a dropped handle stays usable
	out := strings.Join(histLines(t, "test_retain_hist"), "\n")
	assert.Contains(t, out, `test_retain_hist_count{route="keep",arm="a"} 1`)
	assert.NotContains(t, out, `arm="b"`)
	assert.NotContains(t, out, `route="gone"`)
	assert.NotContains(t, Names(), `test_retain_hist{route="gone"}`)
}

// LLM.Record counts time to first token only for a first byte after the
// start, and only the token counts reported.
func TestLLMRecord(t *testing.T) {
	l := NewLLM("test-llm", "a")
	l.Record(1e9, 1e9+5e6, 19, 0) // 5 ms, prompt only
	l.Record(1e9, 0, 0, 7)        // no response byte
	l.Record(2e9, 1e9, 0, 0)      // first byte before the start: clock skew, dropped
	var b bytes.Buffer
	WritePrometheus(&b)
	out := b.String()
	assert.Contains(t, out, `sluice_llm_ttft_seconds_count{route="test-llm",arm="a"} 1`)
	assert.Contains(t, out, `sluice_llm_ttft_seconds_bucket{route="test-llm",arm="a",le="0.005"} 1`)
	assert.Contains(t, out, `sluice_llm_tokens_total{route="test-llm",arm="a",type="prompt"} 19`)
	assert.Contains(t, out, `sluice_llm_tokens_total{route="test-llm",arm="a",type="completion"} 7`)
}
