package plugin

import (
	"cmp"
	"slices"
)

// Entry is one compiled plugin configuration of a chain.
type Entry struct {
	Name     string
	Priority int
	Global   bool // from a global rule: runs before the route's plugins
	Instance Instance
}

// Chain is a route's compiled plugins, one list per phase, each sorted
// once by Build. Global rules' rewrite and access run before the route's
// (APISIX runs global rules first); within each group higher priority runs
// first. A nil *Chain has no plugins.
type Chain struct {
	// Pre is the rewrite phase's steps followed by the access phase's.
	Pre          []Step
	BeforeProxy  []BeforeProxier
	HeaderFilter []HeaderFilterer
	BodyFilter   []BodyFilterer
	Log          []Logger
	// NeedsBody: a rewrite or access step reads c.Body.
	NeedsBody bool
	// Usage: a plugin reads the response's LLM token usage.
	Usage bool
	// Names lists the plugin names, sorted by priority (for logs and tests).
	Names []string
}

// Step is one rewrite or access call.
type Step struct {
	Name   string
	rewr   Rewriter
	access Accessor
}

// Run calls the step's phase method.
func (s *Step) Run(c *Ctx) Result {
	if s.rewr != nil {
		return s.rewr.Rewrite(c)
	}
	return s.access.Access(c)
}

// NewChain sorts entries into per-phase lists. It returns nil when entries
// is empty.
func NewChain(entries []Entry) *Chain {
	if len(entries) == 0 {
		return nil
	}
	es := slices.Clone(entries)
	slices.SortStableFunc(es, func(a, b Entry) int {
		if a.Global != b.Global {
			if a.Global {
				return -1
			}
			return 1
		}
		return cmp.Compare(b.Priority, a.Priority)
	})
	ch := &Chain{}
	for _, e := range es {
		ch.Names = append(ch.Names, e.Name)
	}
	// The global rules' rewrite and access phases, then the route's (APISIX
	// http_access_phase: run_global_rules runs both phases of the global
	// rules before the route's plugins run theirs).
	split := 0
	for split < len(es) && es[split].Global {
		split++
	}
	for _, group := range [][]Entry{es[:split], es[split:]} {
		for _, e := range group { // the rewrite phase, then access
			if r, ok := e.Instance.(Rewriter); ok {
				ch.Pre = append(ch.Pre, Step{Name: e.Name, rewr: r})
				ch.NeedsBody = ch.NeedsBody || needsBody(e.Instance)
			}
		}
		for _, e := range group {
			if a, ok := e.Instance.(Accessor); ok {
				ch.Pre = append(ch.Pre, Step{Name: e.Name, access: a})
				ch.NeedsBody = ch.NeedsBody || needsBody(e.Instance)
			}
		}
	}
	for _, e := range es {
		if p, ok := e.Instance.(BeforeProxier); ok {
			ch.BeforeProxy = append(ch.BeforeProxy, p)
		}
		if p, ok := e.Instance.(HeaderFilterer); ok {
			ch.HeaderFilter = append(ch.HeaderFilter, p)
		}
		if p, ok := e.Instance.(BodyFilterer); ok {
			ch.BodyFilter = append(ch.BodyFilter, p)
		}
		if p, ok := e.Instance.(Logger); ok {
			ch.Log = append(ch.Log, p)
		}
		if u, ok := e.Instance.(UsageReader); ok && u.ReadsUsage() {
			ch.Usage = true
		}
	}
	return ch
}

func needsBody(i Instance) bool {
	nb, ok := i.(NeedsBody)
	return ok && nb.NeedsBody()
}

// Rotation is smooth weighted round-robin (nginx's algorithm) over a fixed
// weight list, with one position per event loop: within one loop, any
// window of sum(weights) consecutive picks gives each index exactly its
// weight. Only loop i touches slot i, so Pick needs no lock.
type Rotation struct {
	Key     string
	weights []int
	total   int
	slots   [][]int // per loop: current weight per index
}

// NewRotation returns a rotation over weights for loops event loops.
// Negative weights count as 0. With every weight 0 the first index is
// always picked (APISIX's roundrobin returns its first entry).
func NewRotation(key string, weights []int, loops int) *Rotation {
	if loops < 1 {
		loops = 1
	}
	r := &Rotation{Key: key, weights: make([]int, len(weights)), slots: make([][]int, loops)}
	for i, w := range weights {
		r.weights[i] = max(w, 0)
		r.total += r.weights[i]
	}
	for i := range r.slots {
		r.slots[i] = make([]int, len(weights))
	}
	return r
}

// Pick returns the next index for loop. It must be called on that loop.
func (r *Rotation) Pick(loop int) int {
	if len(r.weights) <= 1 || r.total == 0 {
		return 0
	}
	cur := r.slots[loop%len(r.slots)]
	best := -1
	for i, w := range r.weights {
		if w == 0 {
			continue
		}
		cur[i] += w
		if best < 0 || cur[i] > cur[best] {
			best = i
		}
	}
	cur[best] -= r.total
	return best
}

// Carry copies loop's position from prev (the same key in the previous
// table) when its weights are the same, so a config change elsewhere does
// not reset the split (APISIX resets it, #4684). Changed weights start from
// zero: the new ratio is exact from the first window. It must be called on
// that loop, before the loop picks from r.
func (r *Rotation) Carry(loop int, prev *Rotation) {
	if prev == nil || !slices.Equal(prev.weights, r.weights) {
		return
	}
	copy(r.slots[loop%len(r.slots)], prev.slots[loop%len(prev.slots)])
}

// Weights returns the configured weights (negative ones as 0); the slice
// must not be modified.
func (r *Rotation) Weights() []int { return r.weights }

// Instance returns the step's compiled plugin configuration.
func (s *Step) Instance() Instance {
	if s.rewr != nil {
		return s.rewr
	}
	return s.access
}
