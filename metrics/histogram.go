package metrics

import (
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Histogram is a classic Prometheus histogram (cumulative le buckets, _sum,
// _count) whose Update takes no lock and does not allocate: one atomic add
// on the value's bucket and a compare-and-swap loop on the sum. Event loops
// share a handle; a scrape reads the counters one by one, so it may see an
// update's bucket before its sum, never a _count that disagrees with the
// +Inf bucket (both are the total of the bucket counters it read).
//
// VictoriaMetrics' PrometheusHistogram guards its counters with a mutex,
// which the data plane must not take; its metric interface is unexported,
// so these histograms live in their own registry, written after the Set's
// series by a metrics writer.
type Histogram struct {
	family, labels string    // labels: the inside of {…}, "" when none
	bounds         []float64 // upper bounds, strictly increasing
	counts         []atomic.Uint64
	sum            atomic.Uint64 // float64 bits
}

// Update records v; NaN and negative values are dropped (a duration never
// is one).
func (h *Histogram) Update(v float64) {
	if math.IsNaN(v) || v < 0 {
		return
	}
	i := len(h.bounds) // the +Inf bucket
	for j, ub := range h.bounds {
		if v <= ub {
			i = j
			break
		}
	}
	h.counts[i].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// hists is the registry of histograms by series name.
var (
	histMu sync.Mutex
	hists  = map[string]*Histogram{}
)

func init() { Set.RegisterMetricsWriter(writeHistograms) }

// NewHistogram returns the histogram family{kv...} with the given upper
// bounds (strictly increasing), creating it on first use; racing callers
// get the same handle. Builder goroutine (or any, off the hot path).
func NewHistogram(family string, bounds []float64, kv ...string) *Histogram {
	name := Name(family, kv...)
	histMu.Lock()
	defer histMu.Unlock()
	if h := hists[name]; h != nil {
		return h
	}
	h := &Histogram{family: family, bounds: append([]float64(nil), bounds...),
		counts: make([]atomic.Uint64, len(bounds)+1)}
	if i := strings.IndexByte(name, '{'); i >= 0 {
		h.labels = name[i+1 : len(name)-1]
	}
	hists[name] = h
	return h
}

// unregisterHistogram drops the series name from the registry; it reports
// whether there was one.
func unregisterHistogram(name string) bool {
	histMu.Lock()
	defer histMu.Unlock()
	if hists[name] == nil {
		return false
	}
	delete(hists, name)
	return true
}

// histogramNames lists the registered histogram series.
func histogramNames() []string {
	histMu.Lock()
	defer histMu.Unlock()
	names := make([]string, 0, len(hists))
	for n := range hists {
		names = append(names, n)
	}
	return names
}

// Names lists every registered series: the Set's and the histograms'.
func Names() []string {
	return append(Set.ListMetricNames(), histogramNames()...)
}

// writeHistograms writes every histogram in the text format, grouped by
// family with a HELP and TYPE line each (WritePrometheus fills in the help
// text). Scrape goroutine; it allocates.
func writeHistograms(w io.Writer) {
	histMu.Lock()
	hs := make([]*Histogram, 0, len(hists))
	for _, h := range hists {
		hs = append(hs, h)
	}
	histMu.Unlock()
	sort.Slice(hs, func(i, j int) bool {
		if hs[i].family != hs[j].family {
			return hs[i].family < hs[j].family
		}
		return hs[i].labels < hs[j].labels
	})
	var b []byte
	prev := ""
	for _, h := range hs {
		if h.family != prev {
			b = append(b, "# HELP "...)
			b = append(b, h.family...)
			b = append(b, "\n# TYPE "...)
			b = append(b, h.family...)
			b = append(b, " histogram\n"...)
			prev = h.family
		}
		b = h.appendText(b)
	}
	w.Write(b)
}

// appendText appends h's _bucket, _sum and _count lines.
func (h *Histogram) appendText(b []byte) []byte {
	var total uint64
	for i := range h.counts {
		total += h.counts[i].Load()
		le := "+Inf"
		if i < len(h.bounds) {
			le = strconv.FormatFloat(h.bounds[i], 'g', -1, 64)
		}
		b = append(b, h.family...)
		b = append(b, "_bucket{"...)
		if h.labels != "" {
			b = append(b, h.labels...)
			b = append(b, ',')
		}
		b = append(b, `le="`...)
		b = append(b, le...)
		b = append(b, "\"} "...)
		b = strconv.AppendUint(b, total, 10)
		b = append(b, '\n')
	}
	for _, s := range [...]string{"_sum", "_count"} {
		b = append(b, h.family...)
		b = append(b, s...)
		if h.labels != "" {
			b = append(b, '{')
			b = append(b, h.labels...)
			b = append(b, '}')
		}
		b = append(b, ' ')
		if s == "_sum" {
			b = strconv.AppendFloat(b, math.Float64frombits(h.sum.Load()), 'g', -1, 64)
		} else {
			b = strconv.AppendUint(b, total, 10)
		}
		b = append(b, '\n')
	}
	return b
}
