// Package trafficsplit is APISIX's traffic-split plugin (priority 966,
// access phase), made to really split: rules are tried in order, the first
// whose match holds (or that has none) picks an arm by smooth weighted
// round-robin (nginx's algorithm, one position per event loop, carried
// across config changes), and the arm's upstream (inline, upstream_id, or
// the route's own when the arm has only a weight) serves the request.
//
// Two forms are accepted (SPEC §6): APISIX's
// rules[] {match[] {vars}, weighted_upstreams[] {upstream | upstream_id, weight}}
// and the AI-gateway guide's rules[] {weight, upstream | upstream_id,
// rewrite}, which APISIX silently ignores: every rule with a weight and no
// weighted_upstreams is one arm of a single weighted rule that matches every
// request, tried after the APISIX-form rules. An arm may carry
// rewrite {uri, headers} (rules[].rewrite in the guide form,
// weighted_upstreams[].rewrite in the APISIX form — a sluice extension).
//
// The plugin counts its split: sluice_split_requests_total,
// sluice_split_status_total, sluice_split_aborted_total (responses cut
// after they started), sluice_split_latency_seconds and
// sluice_split_weight per (route, rule, arm), and sluice_llm_tokens_total /
// sluice_llm_ttft_seconds per (route, arm). Compile creates every handle;
// Access and Log do not allocate.
package trafficsplit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/engine/http1"
	"github.com/sluice-gw/sluice/metrics"
	"github.com/sluice-gw/sluice/model"
	"github.com/sluice-gw/sluice/plugin"
)

const name = "traffic-split"

func init() { plugin.Register(trafficSplit{}) }

type trafficSplit struct{}

func (trafficSplit) Name() string  { return name }
func (trafficSplit) Priority() int { return 966 } // apisix/plugins/traffic-split.lua

// conf is the configuration as written (both forms).
type conf struct {
	Rules []ruleConf `json:"rules"`
}

type ruleConf struct {
	Match []struct {
		Vars json.RawMessage `json:"vars"`
	} `json:"match"`
	WeightedUpstreams []armConf `json:"weighted_upstreams"`
	// guide form: the rule is one arm
	Weight     json.RawMessage `json:"weight"`
	UpstreamID json.RawMessage `json:"upstream_id"`
	Upstream   json.RawMessage `json:"upstream"`
	Rewrite    json.RawMessage `json:"rewrite"`
}

type armConf struct {
	UpstreamID json.RawMessage `json:"upstream_id"`
	Upstream   json.RawMessage `json:"upstream"`
	Weight     json.RawMessage `json:"weight"` // an integer (weight), default 1
	Rewrite    json.RawMessage `json:"rewrite"`

	at string // where errors point, when not at[j] (a guide-form rule: rules[i])
}

type rewriteConf struct {
	URI     string          `json:"uri"`
	Headers json.RawMessage `json:"headers"`
}

// split is a compiled traffic-split.
type split struct {
	rules []rule
}

type rule struct {
	conds []plugin.Cond // any holds; none = every request
	rot   *plugin.Rotation
	arms  []arm
}

type arm struct {
	meta plugin.Arm
	up   *balancer.Upstream // nil: the route's upstream
	uri  []byte             // rewrite.uri, nil = keep
	ops  []plugin.HeaderOp  // rewrite.headers

	// metric handles (nil when compiled for validation only)
	requests *vm.Counter
	aborted  *vm.Counter
	statuses *metrics.Statuses
	latency  *metrics.Histogram
	llm      *metrics.LLM
}

var (
	_ plugin.Accessor    = (*split)(nil)
	_ plugin.Logger      = (*split)(nil)
	_ plugin.UsageReader = (*split)(nil)
	_ plugin.ArmLister   = (*split)(nil)
)

func bad(format string, args ...any) error { return plugin.Errorf(name, format, args...) }

// Compile checks the configuration and compiles every arm's upstream.
// Arm upstream_ids must exist (a 400 at the Admin API; APISIX accepts them
// and fails with 500 at request time, #9996).
func (trafficSplit) Compile(raw json.RawMessage, env *plugin.Env) (plugin.Instance, error) {
	var c conf
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&c); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, bad("property %q validation failed: wrong type, got %s", te.Field, model.GotType(te.Value))
		}
		return nil, bad("%v", err)
	}
	s := &split{}
	var guide []armConf // guide-form rules, collected into one rule
	for i, rc := range c.Rules {
		at := fmt.Sprintf("rules[%d]", i+1)
		if len(rc.WeightedUpstreams) == 0 && present(rc.Weight) {
			if len(rc.Match) > 0 {
				return nil, bad("%s: match needs weighted_upstreams (a rule with weight is one arm of the guide form, which matches every request)", at)
			}
			guide = append(guide, armConf{UpstreamID: rc.UpstreamID, Upstream: rc.Upstream, Weight: rc.Weight, Rewrite: rc.Rewrite, at: at})
			continue
		}
		if len(rc.Upstream) > 0 || len(rc.Rewrite) > 0 || present(rc.UpstreamID) {
			return nil, bad("%s: upstream, upstream_id and rewrite belong in weighted_upstreams[] or in a rule with a weight", at)
		}
		r := rule{}
		for _, m := range rc.Match {
			cond, err := env.Vars(m.Vars)
			if err != nil {
				return nil, err // APISIX: "failed to validate the 'vars' expression: ..."
			}
			if cond != nil {
				r.conds = append(r.conds, cond)
			}
		}
		if len(rc.WeightedUpstreams) == 0 {
			// APISIX: weighted_upstreams defaults to [{weight: 1}]: the
			// route's upstream
			rc.WeightedUpstreams = []armConf{{}}
		}
		if err := s.addRule(&r, len(s.rules), at+".weighted_upstreams", rc.WeightedUpstreams, env); err != nil {
			return nil, err
		}
	}
	if len(guide) > 0 {
		r := rule{}
		if err := s.addRule(&r, len(s.rules), "rules", guide, env); err != nil {
			return nil, err
		}
	}
	if len(s.rules) == 0 {
		return nil, nil // "traffic-split": {} does nothing (APISIX T4-7)
	}
	if env.RouteID != "" {
		s.handles(env.RouteID)
	}
	return s, nil
}

// addRule compiles arms into r and appends it as rule number idx.
func (s *split) addRule(r *rule, idx int, at string, arms []armConf, env *plugin.Env) error {
	if len(arms) > 20 {
		return bad("%s: expect array to have at most 20 items", at)
	}
	weights := make([]int, len(arms))
	seen := map[string]int{}
	for j, ac := range arms {
		where := fmt.Sprintf("%s[%d]", at, j+1)
		if ac.at != "" {
			where = ac.at
		}
		w, err := weight(ac.Weight)
		if err != nil {
			return bad("%s.weight: %v", where, err)
		}
		weights[j] = w
		a := arm{}
		label := "route"
		switch {
		case len(ac.UpstreamID) > 0 && string(ac.UpstreamID) != "null":
			id, err := idString(ac.UpstreamID)
			if err != nil {
				return bad("%s.upstream_id: %v", where, err)
			}
			u, err := env.Upstream(id)
			if err != nil {
				return fmt.Errorf("failed to fetch upstream info by upstream id [%s], response code: 404 (plugin traffic-split, %s.upstream_id)", id, where)
			}
			a.up, label = u, id
		case len(ac.Upstream) > 0 && string(ac.Upstream) != "null":
			u, err := env.InlineUpstream(ac.Upstream, fmt.Sprintf("%s/traffic-split/%d/%d", env.Scope, idx, j))
			if err != nil {
				return bad("%s.upstream: %v", where, err)
			}
			a.up = u
			label = upstreamLabel(ac.Upstream, u)
		}
		if n := seen[label]; n > 0 {
			label += "#" + strconv.Itoa(j+1)
		}
		seen[label]++
		if err := a.rewrite(where+".rewrite", ac.Rewrite); err != nil {
			return err
		}
		a.meta = plugin.Arm{Rule: idx, Index: j, Label: strconv.Itoa(idx) + "/" + strconv.Itoa(j), Name: label}
		r.arms = append(r.arms, a)
	}
	r.rot = env.Rotation(fmt.Sprintf("%s/traffic-split/%d", env.Scope, idx), weights)
	s.rules = append(s.rules, *r)
	return nil
}

// present reports whether an optional field was given (not absent, not
// null).
func present(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

// weight reads an arm's weight: an integer ≥ 0, 1 when absent. An
// integral value in any number syntax (1.0, 1e2) is an integer, as in
// APISIX's schema (model.JSONInteger).
func weight(raw json.RawMessage) (int, error) {
	if !present(raw) {
		return 1, nil
	}
	if k := plugin.JSONKind(raw); k != "number" {
		return 0, fmt.Errorf("wrong type: expected integer, got %s", model.GotType(k))
	}
	w, ok := model.JSONInteger(raw)
	switch {
	case !ok || int64(int(w)) != w:
		return 0, errors.New("wrong type: expected integer, got number") // a fraction, or out of range
	case w < 0:
		return 0, fmt.Errorf("expected %d to be at least 0", w)
	}
	return int(w), nil
}

// idString reads an upstream_id: a string or an integer, whose id is its
// decimal text (1.0 names upstream "1", as model.ID reads it).
func idString(raw json.RawMessage) (string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", errors.New("wrong type: expected string or integer")
	}
	if v, ok := model.JSONInteger(raw); ok {
		return strconv.FormatInt(v, 10), nil
	}
	return n.String(), nil
}

// upstreamLabel names an inline upstream arm: its name, else its first node.
func upstreamLabel(raw json.RawMessage, u *balancer.Upstream) string {
	var m struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(raw, &m) == nil && m.Name != "" {
		return m.Name
	}
	if len(u.Nodes) > 0 {
		n := u.Nodes[0]
		return n.Host + ":" + strconv.Itoa(n.Port)
	}
	return "upstream"
}

// rewrite compiles an arm's rewrite {uri, headers}.
func (a *arm) rewrite(where string, raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var rc rewriteConf
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rc); err != nil {
		return bad("%s: %v", where, err)
	}
	if rc.URI != "" {
		if rc.URI[0] != '/' {
			return bad(`%s.uri: failed to match pattern "^/" with %q`, where, rc.URI)
		}
		if i := badPathByte(rc.URI); i >= 0 {
			// it goes into the request line as it is: a space or CRLF
			// would split it into another request
			return bad("%s.uri: %q at byte %d: a path only (no query), with anything but letters, digits and -._~!$&'()*+,;=:@/ percent-encoded", where, rc.URI[i], i)
		}
		if _, ok := http1.NormalizeBuiltPath([]byte(rc.URI)); !ok {
			return bad("%s.uri: %q has a \".\" or \"..\" segment (write the path it means)", where, rc.URI)
		}
		a.uri = []byte(rc.URI)
	}
	if len(rc.Headers) > 0 && string(rc.Headers) != "null" {
		ops, err := headerOps(rc.Headers)
		if err != nil {
			return bad("%s.headers: %v", where, err)
		}
		a.ops = ops
	}
	return nil
}

// badPathByte returns the index of the first byte of p that may not stand
// raw in a URI path (RFC 3986 pchar and '/'; '%' only before two hex
// digits), or -1.
func badPathByte(p string) int {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0:
		case c == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]):
		default:
			return i
		}
	}
	return -1
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// headerOps reads headers as proxy-rewrite does: {add, set, remove} (in
// that order) or a flat {name: value} meaning set; as in proxy-rewrite
// (nginx), setting an empty value removes the header and adding one sends
// nothing.
func headerOps(raw json.RawMessage) ([]plugin.HeaderOp, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, errors.New("wrong type: expected object")
	}
	_, hasAdd := obj["add"]
	_, hasSet := obj["set"]
	_, hasRemove := obj["remove"]
	var ops []plugin.HeaderOp
	pairs := func(kind uint8, raw json.RawMessage) error {
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			return errors.New("header values must be strings")
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if err := plugin.CheckEditableHeader(k); err != nil {
				return fmt.Errorf("header %q: %v", k, err)
			}
			if err := plugin.CheckHeaderValue(m[k]); err != nil {
				return fmt.Errorf("header %q: %v", k, err)
			}
			switch {
			case m[k] != "":
				ops = append(ops, plugin.HeaderOp{Kind: kind, Name: []byte(k), Value: []byte(m[k])})
			case kind == plugin.HeaderSet:
				ops = append(ops, plugin.HeaderOp{Kind: plugin.HeaderRemove, Name: []byte(k)})
			}
		}
		return nil
	}
	if !hasAdd && !hasSet && !hasRemove {
		return ops, pairs(plugin.HeaderSet, raw)
	}
	for k := range obj {
		if k != "add" && k != "set" && k != "remove" {
			return nil, fmt.Errorf("unknown field %q (add, set, remove)", k)
		}
	}
	if hasAdd {
		if err := pairs(plugin.HeaderAdd, obj["add"]); err != nil {
			return nil, err
		}
	}
	if hasSet {
		if err := pairs(plugin.HeaderSet, obj["set"]); err != nil {
			return nil, err
		}
	}
	if hasRemove {
		var names []string
		if err := json.Unmarshal(obj["remove"], &names); err != nil {
			return nil, errors.New("remove must be an array of strings")
		}
		for _, n := range names {
			if err := plugin.CheckEditableHeader(n); err != nil {
				return nil, fmt.Errorf("header %q: %v", n, err)
			}
			ops = append(ops, plugin.HeaderOp{Kind: plugin.HeaderRemove, Name: []byte(n)})
		}
	}
	return ops, nil
}

// Arms lists every arm of every rule (plugin.ArmLister).
func (s *split) Arms() []plugin.Arm {
	var out []plugin.Arm
	for ri := range s.rules {
		for ai := range s.rules[ri].arms {
			a := s.rules[ri].arms[ai].meta
			a.Weight = s.rules[ri].rot.Weights()[ai]
			out = append(out, a)
		}
	}
	return out
}

// handles creates the arm-level series of route. The weight gauge is set
// when a table is published (metrics.SetSplitWeights), not here: a table
// built only to validate an Admin API write must not change it.
func (s *split) handles(route string) {
	for ri := range s.rules {
		r := &s.rules[ri]
		for ai := range r.arms {
			a := &r.arms[ai]
			rl, an := strconv.Itoa(ri), a.meta.Name
			a.requests = metrics.Counter("sluice_split_requests_total", "route", route, "rule", rl, "arm", an)
			a.aborted = metrics.Counter("sluice_split_aborted_total", "route", route, "rule", rl, "arm", an)
			a.statuses = metrics.NewStatuses("sluice_split_status_total", "route", route, "rule", rl, "arm", an)
			a.latency = metrics.NewHistogram("sluice_split_latency_seconds", metrics.SecondsBuckets, "route", route, "rule", rl, "arm", an)
			a.llm = metrics.NewLLM(route, an)
		}
	}
}

// Access picks the arm of the first matching rule.
func (s *split) Access(c *plugin.Ctx) plugin.Result {
	for ri := range s.rules {
		r := &s.rules[ri]
		if !r.matches(c) {
			continue
		}
		a := &r.arms[r.rot.Pick(c.Loop)]
		c.Arm = &a.meta
		if a.up != nil {
			c.Upstream = a.up
		}
		if a.uri != nil {
			c.URI, c.URIBuilt = a.uri, false
		}
		if len(a.ops) > 0 {
			c.HeaderOps = append(c.HeaderOps, a.ops...)
		}
		return plugin.Result{}
	}
	return plugin.Result{} // no rule matched: the route's upstream
}

func (r *rule) matches(c *plugin.Ctx) bool {
	if len(r.conds) == 0 {
		return true
	}
	for _, cond := range r.conds {
		if cond.Eval(c) {
			return true
		}
	}
	return false
}

// NeedsBody reports whether a match reads the request body (post_arg.*).
func (s *split) NeedsBody() bool {
	for i := range s.rules {
		for _, cond := range s.rules[i].conds {
			if nb, ok := cond.(plugin.NeedsBody); ok && nb.NeedsBody() {
				return true
			}
		}
	}
	return false
}

// ReadsUsage: Log records the arm's LLM token usage.
func (s *split) ReadsUsage() bool { return true }

// Log counts the request on its arm.
func (s *split) Log(c *plugin.Ctx) {
	m := c.Arm
	if m == nil || m.Rule >= len(s.rules) || m.Index >= len(s.rules[m.Rule].arms) {
		return
	}
	a := &s.rules[m.Rule].arms[m.Index]
	if &a.meta != m || a.requests == nil {
		return // another instance's arm, or compiled for validation only
	}
	a.requests.Inc()
	a.statuses.Inc(c.Status)
	if c.Aborted {
		a.aborted.Inc()
	}
	a.latency.Update(c.Loop, float64(c.End-c.Start)/1e9)
	a.llm.Record(c.Loop, c.Start, c.FirstByte, c.PromptTokens, c.CompletionTokens)
}
