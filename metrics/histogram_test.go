package metrics

import (
	"bytes"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	vm "github.com/VictoriaMetrics/metrics"
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
		h.Update(0, v)
	}
	NewHistogram("test_hist_seconds", []float64{1}).Update(0, 3)
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
				h.Update(w, 0.25) // each worker a loop, with its shard
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

func TestSumScale(t *testing.T) {
	assert.Equal(t, 1e6, sumScale(SecondsBuckets))
	assert.Equal(t, 1e3, sumScale(LatencyBuckets))
	assert.Equal(t, 1e4, sumScale([]float64{0.5, 1}))
	assert.Equal(t, 1e6, sumScale([]float64{0, 1}))
	assert.Equal(t, 1.0, sumScale([]float64{1e6}))
	h := NewHistogram("test_hist_sum", SecondsBuckets)
	for range 3 {
		h.Update(0, 0.1) // 0.1 + 0.1 + 0.1 reads 0.3, not 0.30000000000000004
	}
	assert.Contains(t, histLines(t, "test_hist_sum"), "test_hist_sum_sum 0.3")
}

func TestHistogramUpdateDoesNotAllocate(t *testing.T) {
	h := NewHistogram("test_hist_alloc", LatencyBuckets)
	assert.Zero(t, testing.AllocsPerRun(1000, func() { h.Update(0, 12.5) }))
}

func TestRetainDropsHistograms(t *testing.T) {
	keep := NewHistogram("test_retain_hist", SecondsBuckets, "route", "keep", "arm", "a")
	gone := NewHistogram("test_retain_hist", SecondsBuckets, "route", "keep", "arm", "b")
	NewHistogram("test_retain_hist", SecondsBuckets, "route", "gone").Update(0, 1)
	keep.Update(0, 1)
	gone.Update(0, 1)
	require.GreaterOrEqual(t, Retain([]string{"keep"}, []Arm{{Route: "keep", Name: "a"}}), 2)
	gone.Update(0, 1) // a dropped handle stays usable
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
	l.Record(0, 1e9, 1e9+5e6, 19, 0) // 5 ms, prompt only
	l.Record(0, 1e9, 0, 0, 7)        // no response byte
	l.Record(0, 2e9, 1e9, 0, 0)      // first byte before the start: clock skew, dropped
	var b bytes.Buffer
	WritePrometheus(&b)
	out := b.String()
	assert.Contains(t, out, `sluice_llm_ttft_seconds_count{route="test-llm",arm="a"} 1`)
	assert.Contains(t, out, `sluice_llm_ttft_seconds_bucket{route="test-llm",arm="a",le="0.005"} 1`)
	assert.Contains(t, out, `sluice_llm_tokens_total{route="test-llm",arm="a",type="prompt"} 19`)
	assert.Contains(t, out, `sluice_llm_tokens_total{route="test-llm",arm="a",type="completion"} 7`)
}

// BenchmarkHistogramUpdate: an update from every P at once, sluice's
// histogram against VictoriaMetrics' mutex-guarded one.
func BenchmarkHistogramUpdate(b *testing.B) {
	b.Run("sluice", func(b *testing.B) {
		h := NewHistogram("bench_hist_seconds", SecondsBuckets)
		var loops atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			loop := int(loops.Add(1)) // one event loop per goroutine
			for pb.Next() {
				h.Update(loop, 0.0125)
			}
		})
	})
	b.Run("victoriametrics", func(b *testing.B) {
		h := vm.NewSet().NewPrometheusHistogramExt("bench_hist_seconds", SecondsBuckets)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				h.Update(0.0125)
			}
		})
	})
}
