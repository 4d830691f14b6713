package metrics

import (
	"io"
	"math"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Histogram is a classic Prometheus histogram (cumulative le buckets, _sum,
// _count) whose Update takes no lock, does not allocate, and does not share
// a cache line between event loops: each loop counts in its own shard (one
// atomic add on the value's bucket, one on the sum), and a scrape adds the
// shards up. The sum is kept in fixed point at a thousandth of the smallest
// bound (sumScale: 1 µs for the seconds and milliseconds histograms; 2^64
// µs is half a million years). A scrape reads the counters one by one, so
// it may see an update's bucket before its sum, never a _count that
// disagrees with the +Inf bucket (both are the total of the bucket
// counters it read).
//
// VictoriaMetrics' PrometheusHistogram guards its counters with a mutex,
// which the data plane must not take; its metric interface is unexported,
// so these histograms live in their own registry, written after the Set's
// series by a metrics writer.
type Histogram struct {
	family, labels string    // labels: the inside of {…}, "" when none
	bounds         []float64 // upper bounds, strictly increasing
	scale          float64   // a power of ten: sum resolution 1/scale
	// cells holds the shards, stride cells each (a multiple of a cache
	// line): len(bounds)+1 bucket counters, then the sum.
	cells   []atomic.Uint64
	stride  int
	nshards int
}

// cacheLine is the cells per 64-byte cache line.
const cacheLine = 8

// Update records v from event loop loop (any index: shards wrap); NaN and
// negative values are dropped (a duration never is one).
func (h *Histogram) Update(loop int, v float64) {
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
	base := int(uint(loop)%uint(h.nshards)) * h.stride
	h.cells[base+i].Add(1)
	h.cells[base+len(h.bounds)+1].Add(uint64(v*h.scale + 0.5))
}

// total returns cell i's count (len(bounds): +Inf, not cumulative) and
// the sum, over every shard.
func (h *Histogram) total(i int) uint64 {
	var n uint64
	for s := 0; s < h.nshards; s++ {
		n += h.cells[s*h.stride+i].Load()
	}
	return n
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
	h := &Histogram{family: family, bounds: append([]float64(nil), bounds...), scale: sumScale(bounds)}
	h.nshards = runtime.GOMAXPROCS(0)
	h.stride = (len(bounds) + 2 + cacheLine - 1) / cacheLine * cacheLine
	n := h.nshards * h.stride
	buf := make([]atomic.Uint64, n+cacheLine-1)
	off := (cacheLine - int(uintptr(unsafe.Pointer(&buf[0]))/8%cacheLine)) % cacheLine
	h.cells = buf[off : off+n : off+n] // shards start on a cache line
	if i := strings.IndexByte(name, '{'); i >= 0 {
		h.labels = name[i+1 : len(name)-1]
	}
	hists[name] = h
	return h
}

// sumScale is the power of ten that keeps a histogram's sum to a thousandth
// of its smallest bound (10^6 for seconds, 10^3 for milliseconds: 1 µs),
// between 1 and 10^12.
func sumScale(bounds []float64) float64 {
	e := 6.0
	if b := bounds[0]; b > 0 {
		e = min(max(math.Ceil(3-math.Log10(b)), 0), 12)
	}
	return math.Pow(10, e)
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
	for i := 0; i <= len(h.bounds); i++ {
		total += h.total(i)
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
			b = strconv.AppendFloat(b, float64(h.total(len(h.bounds)+1))/h.scale, 'g', -1, 64)
		} else {
			b = strconv.AppendUint(b, total, 10)
		}
		b = append(b, '\n')
	}
	return b
}
