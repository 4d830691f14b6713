package trafficsplit_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/engine/http1"
	"github.com/sluice-gw/sluice/metrics"
	"github.com/sluice-gw/sluice/model"
	"github.com/sluice-gw/sluice/plugin"
	_ "github.com/sluice-gw/sluice/plugin/trafficsplit"
	"github.com/sluice-gw/sluice/router"
)

// fixture builds tables from route JSON with upstreams u1..u3 (ports
// 1981..1983) and keeps the Builder, so rebuilds carry split positions.
type fixture struct {
	t   *testing.T
	b   *router.Builder
	tbl *router.Table
}

func newFixture(t *testing.T, loops int) *fixture {
	return &fixture{t: t, b: &router.Builder{Loops: loops}}
}

func (f *fixture) build(routes ...string) error {
	snap := model.NewSnapshot()
	for i := 1; i <= 3; i++ {
		u, err := model.DecodeUpstream([]byte(`{"nodes":{"127.0.0.1:198` + strconv.Itoa(i) + `":1}}`))
		require.NoError(f.t, err)
		snap.Upstreams["u"+strconv.Itoa(i)] = u
	}
	for _, js := range routes {
		r, err := model.DecodeRoute([]byte(js))
		require.NoError(f.t, err)
		snap.Routes = append(snap.Routes, r)
	}
	t, err := f.b.Build(snap)
	if err != nil {
		return err
	}
	f.tbl = t
	return nil
}

func (f *fixture) mustBuild(routes ...string) {
	f.t.Helper()
	require.NoError(f.t, f.build(routes...))
}

// req is one parsed request and its plugin context.
type req struct {
	rr *router.Request
	c  plugin.Ctx
}

func newReq(t testing.TB, target string, headers ...string) *req {
	raw := "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n"
	for _, h := range headers {
		raw += h + "\r\n"
	}
	raw += "\r\n"
	hr := &http1.Request{Headers: make([]http1.Header, 0, 16)}
	_, err := http1.ParseRequest(hr, []byte(raw), &http1.Limits{})
	require.NoError(t, err)
	return &req{rr: &router.Request{Request: hr, RemoteAddr: netip.MustParseAddr("127.0.0.1")}}
}

// send matches r on the table, runs the route's access steps on loop and
// returns the port of the node the request would go to, and the URI sent.
func (f *fixture) send(r *req, loop int) (port int, uri string) {
	f.t.Helper()
	rt := f.tbl.Match(r.rr)
	require.NotNil(f.t, rt)
	c := &r.c
	c.Reset()
	c.Req, c.Match, c.Loop, c.RouteID = r.rr.Request, r.rr, loop, rt.ID
	for i := range rt.Chain.Pre {
		res := rt.Chain.Pre[i].Run(c)
		require.Zero(f.t, res.Status)
	}
	u := c.Upstream
	if u == nil {
		u = rt.Upstream
	}
	uri = string(r.rr.Path)
	if c.URI != nil {
		uri = string(c.URI)
	}
	return u.Nodes[0].Port, uri
}

func (f *fixture) ports(target string, n, loop int) []int {
	r := newReq(f.t, target)
	out := make([]int, n)
	for i := range out {
		out[i], _ = f.send(r, loop)
	}
	return out
}

func sorted(p []int) []int { p = append([]int(nil), p...); sort.Ints(p); return p }

func count(p []int) map[int]int {
	m := map[int]int{}
	for _, x := range p {
		m[x]++
	}
	return m
}

func split(rules string) string {
	return `{"id":"1","uri":"/*","upstream":{"nodes":{"127.0.0.1:1980":1}},"plugins":{"traffic-split":{"rules":` + rules + `}}}`
}

func TestOneToOneIsFiftyFifty(t *testing.T) {
	f := newFixture(t, 1)
	f.mustBuild(split(`[{"weighted_upstreams":[{"upstream_id":"u1","weight":1},{"upstream_id":"u2","weight":1}]}]`))
	p := f.ports("/x", 100, 0)
	assert.Equal(t, map[int]int{1981: 50, 1982: 50}, count(p))
	for i := 0; i+1 < len(p); i += 2 {
		assert.NotEqual(t, p[i], p[i+1], "alternates")
	}
}

func TestExactPerWindow(t *testing.T) {
	f := newFixture(t, 2)
	f.mustBuild(split(`[{"weighted_upstreams":[{"upstream_id":"u1","weight":80},{"upstream_id":"u2","weight":20}]}]`))
	for loop := range 2 {
		p := f.ports("/x", 300, loop)
		for w := 0; w < 300; w += 100 {
			assert.Equal(t, map[int]int{1981: 80, 1982: 20}, count(p[w:w+100]), "loop %d window %d", loop, w)
		}
	}
	f.mustBuild(split(`[{"weighted_upstreams":[{"upstream_id":"u1","weight":3},{"upstream_id":"u2","weight":2},{"upstream_id":"u3","weight":1}]}]`))
	p := f.ports("/x", 60, 0)
	for w := 0; w < 60; w += 6 {
		assert.Equal(t, map[int]int{1981: 3, 1982: 2, 1983: 1}, count(p[w:w+6]), "window %d", w)
	}
	// smooth: nginx's order for 3:2:1 interleaves (a b a c b a), never a a a
	assert.Equal(t, []int{1981, 1982, 1981, 1983, 1982, 1981}, p[:6])
}

// APISIX traffic-split.t T20–21: inline 1981 weight 2 + route upstream weight 1.
func TestGrayscaleWithRouteUpstream(t *testing.T) {
	f := newFixture(t, 1)
	f.mustBuild(split(`[{"weighted_upstreams":[{"upstream":{"name":"up","type":"roundrobin","nodes":{"127.0.0.1:1981":1}},"weight":2},{"weight":1}]}]`))
	assert.Equal(t, []int{1980, 1980, 1981, 1981, 1981, 1981}, sorted(f.ports("/x", 6, 0)))
}

// A weight is an integer by its value, as in APISIX's schema: 2.0 and 1e0
// split 2:1 in both forms; 1.5 is refused.
func TestIntegralWeights(t *testing.T) {
	f := newFixture(t, 1)
	f.mustBuild(split(`[{"weighted_upstreams":[{"upstream_id":"u1","weight":2.0},{"weight":1e0}]}]`))
	assert.Equal(t, []int{1980, 1980, 1981, 1981, 1981, 1981}, sorted(f.ports("/x", 6, 0)))
	f.mustBuild(split(`[{"weight":2.0,"upstream":{"nodes":{"127.0.0.1:1981":1.0}}},{"weight":10e-1,"upstream":{"nodes":{"127.0.0.1:1982":1}}}]`))
	assert.Equal(t, []int{1981, 1981, 1981, 1981, 1982, 1982}, sorted(f.ports("/x", 6, 0)))

	for conf, want := range map[string]string{
		split(`[{"weighted_upstreams":[{"upstream_id":"u1","weight":1.5}]}]`):  `rules[1].weighted_upstreams[1].weight: wrong type: expected integer, got number`,
		split(`[{"weighted_upstreams":[{"upstream_id":"u1","weight":1e30}]}]`): `rules[1].weighted_upstreams[1].weight: wrong type: expected integer, got number`,
		split(`[{"weighted_upstreams":[{"upstream_id":"u1","weight":"1"}]}]`):  `rules[1].weighted_upstreams[1].weight: wrong type: expected integer, got string`,
		split(`[{"weighted_upstreams":[{"upstream_id":"u1","weight":-1.0}]}]`): `rules[1].weighted_upstreams[1].weight: expected -1 to be at least 0`,
		split(`[{"weight":0.5,"upstream":{"nodes":{"127.0.0.1:1":1}}}]`):       `rules[1].weight: wrong type: expected integer, got number`,
	} {
		err := f.build(conf)
		require.Error(t, err, conf)
		assert.Contains(t, err.Error(), "failed to check the configuration of plugin traffic-split err: "+want, conf)
	}
}

// APISIX T4–7: configurations that split nothing send everything to the route.
func TestNoOpConfigs(t *testing.T) {
	for _, conf := range []string{
		`{"id":"1","uri":"/*","upstream":{"nodes":{"127.0.0.1:1980":1}},"plugins":{"traffic-split":{}}}`,
		split(`[{"match":[{"vars":[["arg_x","==","1"]]}]}]`),
		split(`[{"weighted_upstreams":[{}]}]`),
	} {
		f := newFixture(t, 1)
		f.mustBuild(conf)
		rt := f.tbl.Match(newReq(t, "/x").rr)
		require.NotNil(t, rt)
		if rt.Chain == nil {
			continue
		}
		assert.Equal(t, []int{1980, 1980, 1980, 1980, 1980, 1980}, f.ports("/x", 6, 0), conf)
	}
}

// APISIX T11–13: match plus a 3-way split.
func TestMatchThenSplit(t *testing.T) {
	f := newFixture(t, 1)
	f.mustBuild(split(`[{"match":[{"vars":[["arg_name","==","jack"],["arg_age","~~","^[1-9]{1,2}"]]},{"vars":[["arg_name2","in",["jack","rose"]],["arg_age","!","<",18]]}],
		"weighted_upstreams":[{"upstream_id":"u1","weight":2},{"upstream_id":"u2","weight":2},{"weight":1}]}]`))
	assert.Equal(t, []int{1980, 1981, 1981, 1982, 1982}, sorted(f.ports("/x?name=jack&age=22", 5, 0)))
	assert.Equal(t, []int{1980}, f.ports("/x?name=jack&age=0", 1, 0))
	assert.Equal(t, 5, len(f.ports("/x?name2=rose&age=22", 5, 0)))
}

// traffic-split5.t T5–6: rule 1 matches ?id=1, rule 2 is the catch-all.
func TestRulesInOrder(t *testing.T) {
	f := newFixture(t, 1)
	f.mustBuild(split(`[{"match":[{"vars":[["arg_id","==","1"]]}],"weighted_upstreams":[{"upstream_id":"u1"}]},
		{"weighted_upstreams":[{"upstream_id":"u2","weight":1},{"weight":1}]}]`))
	got := append(f.ports("/x?id=1", 2, 0), f.ports("/x?id=2", 2, 0)...)
	assert.Equal(t, []int{1980, 1981, 1981, 1982}, sorted(got))
}

func TestGuideFormRewritesPerArm(t *testing.T) {
	f := newFixture(t, 1)
	f.mustBuild(split(`[
		{"weight":50,"upstream":{"type":"roundrobin","nodes":{"127.0.0.1:1981":1},"pass_host":"node"},"rewrite":{"uri":"/v1/chat/completions"}},
		{"weight":50,"upstream":{"type":"roundrobin","nodes":{"127.0.0.1:1982":1},"pass_host":"node"},"rewrite":{"uri":"/v2/chat/completions","headers":{"X-Arm":"v2"}}}]`))
	r := newReq(t, "/chat/completions?x=1")
	seen := map[string]int{}
	for range 100 {
		port, uri := f.send(r, 0)
		seen[strconv.Itoa(port)+uri]++
		if port == 1982 {
			require.Len(t, r.c.HeaderOps, 1)
			assert.Equal(t, "X-Arm", string(r.c.HeaderOps[0].Name))
		} else {
			assert.Empty(t, r.c.HeaderOps)
		}
		require.NotNil(t, r.c.Arm)
	}
	assert.Equal(t, map[string]int{"1981/v1/chat/completions": 50, "1982/v2/chat/completions": 50}, seen)
}

// A guide-form rule names its upstream by upstream_id as a weighted_upstreams
// arm does: {"weight":1,"upstream_id":"u1"} next to {"weight":1} (the
// route's upstream) splits 1:1; before, the id was dropped and every
// request went to the route's upstream.
func TestGuideFormUpstreamID(t *testing.T) {
	f := newFixture(t, 1)
	f.mustBuild(split(`[{"weight":1,"upstream_id":"u1"},{"weight":1}]`))
	assert.Equal(t, []int{1980, 1980, 1980, 1981, 1981, 1981}, sorted(f.ports("/x", 6, 0)))

	f.mustBuild(split(`[{"weight":3,"upstream_id":"u2","rewrite":{"uri":"/v2"}},{"weight":1,"upstream":{"nodes":{"127.0.0.1:1983":1}}}]`))
	r := newReq(t, "/v1")
	seen := map[string]int{}
	for range 8 {
		port, uri := f.send(r, 0)
		seen[strconv.Itoa(port)+uri]++
		require.NotNil(t, r.c.Arm)
	}
	assert.Equal(t, map[string]int{"1982/v2": 6, "1983/v1": 2}, seen)

	// an unknown id is the same 400 as in weighted_upstreams, at its rule
	err := f.build(split(`[{"weighted_upstreams":[{"upstream_id":"u1"}]},{"weight":1},{"weight":1,"upstream_id":"nope"}]`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "failed to fetch upstream info by upstream id [nope], response code: 404 (plugin traffic-split, rules[3].upstream_id)")
	// a rule with weighted_upstreams (or without a weight) is not an arm:
	// an upstream_id beside them would be ignored, so it is refused
	for _, conf := range []string{
		split(`[{"upstream_id":"u1","weighted_upstreams":[{"weight":1}]}]`),
		split(`[{"upstream_id":"u1"}]`),
	} {
		err = f.build(conf)
		require.Error(t, err, conf)
		assert.Contains(t, err.Error(), "rules[1]: upstream, upstream_id and rewrite belong in weighted_upstreams[] or in a rule with a weight", conf)
	}
}

func TestPositionSurvivesRebuild(t *testing.T) {
	f := newFixture(t, 1)
	conf := split(`[{"weighted_upstreams":[{"upstream_id":"u1","weight":2},{"upstream_id":"u2","weight":1}]}]`)
	f.mustBuild(conf)
	var got []int
	prev := f.tbl
	for range 9 {
		got = append(got, f.ports("/x", 1, 0)...)
		// another route changes: the split's position must carry on, as a
		// loop adopting the new table does
		f.mustBuild(conf, `{"id":"2","uri":"/other`+strconv.Itoa(len(got))+`","upstream_id":"u3"}`)
		carry(prev, f.tbl, 0)
		prev = f.tbl
	}
	for w := 0; w < 9; w += 3 {
		assert.Equal(t, map[int]int{1981: 2, 1982: 1}, count(got[w:w+3]), "window %d of %v", w, got)
	}
	// changed weights are exact from the first window
	f.mustBuild(split(`[{"weighted_upstreams":[{"upstream_id":"u1","weight":1},{"upstream_id":"u2","weight":1}]}]`))
	carry(prev, f.tbl, 0)
	p := f.ports("/x", 10, 0)
	for w := 0; w < 10; w += 2 {
		assert.Equal(t, map[int]int{1981: 1, 1982: 1}, count(p[w:w+2]))
	}
}

// carry does what an event loop does when it adopts next.
func carry(prev, next *router.Table, loop int) {
	byKey := map[string]*plugin.Rotation{}
	for _, r := range prev.Rotations {
		byKey[r.Key] = r
	}
	for _, r := range next.Rotations {
		r.Carry(loop, byKey[r.Key])
	}
}

func TestCompileErrors(t *testing.T) {
	f := newFixture(t, 1)
	err := f.build(split(`[{"weighted_upstreams":[{"upstream_id":"nope","weight":1}]}]`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "failed to fetch upstream info by upstream id [nope]")
	err = f.build(split(`[{"match":[{"vars":[["arg_x","123","1"]]}],"weighted_upstreams":[{"weight":1}]}]`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "failed to validate the 'vars' expression: invalid operator '123'")
	err = f.build(split(`[{"weighted_upstreams":[{"upstream_id":"u1","weight":-1}]}]`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "failed to check the configuration of plugin traffic-split err: rules[1].weighted_upstreams[1].weight")
	err = f.build(split(`[{"weight":1,"upstream":{"nodes":{"127.0.0.1:1":1}},"rewrite":{"uri":"v1"}}]`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `uri: failed to match pattern "^/"`)
	// the uri goes into the request line as it is: nothing that could
	// split it (a space, CRLF) or start a query or fragment
	for _, uri := range []string{`/v2 HTTP/1.1\r\nHost: internal\r\n\r\nGET /admin`, `/v2?x=1`, `/v2#f`, `/a%2`, `/caf\u00e9`} {
		err = f.build(split(`[{"weight":1,"upstream":{"nodes":{"127.0.0.1:1":1}},"rewrite":{"uri":"` + uri + `"}}]`))
		require.Error(t, err, uri)
		assert.Contains(t, err.Error(), "a path only", uri)
	}
	f.mustBuild(split(`[{"weight":1,"upstream":{"nodes":{"127.0.0.1:1":1}},"rewrite":{"uri":"/v1/chat%20x/~a.b_c-d;p=1:@!$&'()*+,"}}]`))
	err = f.build(split(`[{"weight":1,"upstream":{"nodes":{"127.0.0.1:1":1}},"rewrite":{"uri":"/v1/../v2"}}]`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `segment (write the path it means)`)
	err = f.build(split(`[{"weight":1,"upstream":{"nodes":{"127.0.0.1:1":1},"bogus":1}}]`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bogus")
}

func TestPostArgMatch(t *testing.T) {
	f := newFixture(t, 1)
	f.mustBuild(split(`[{"match":[{"vars":[["post_arg.model","==","gpt-4o"]]}],"weighted_upstreams":[{"upstream_id":"u1"}]}]`))
	rt := f.tbl.Match(newReq(t, "/x").rr)
	require.True(t, rt.Chain.NeedsBody)
	r := newReq(t, "/x")
	r.rr.Body = []byte(`{"model":"gpt-4o","messages":[]}`)
	p, _ := f.send(r, 0)
	assert.Equal(t, 1981, p)
	r.rr.Body = []byte(`{"model":"gpt-3.5"}`)
	p, _ = f.send(r, 0)
	assert.Equal(t, 1980, p)
}

func TestArmLabels(t *testing.T) {
	f := newFixture(t, 1)
	f.mustBuild(split(`[{"weighted_upstreams":[{"upstream_id":"u1"},{"upstream":{"name":"canary","nodes":{"127.0.0.1:1":1}}},{"upstream":{"nodes":{"127.0.0.1:2":1}}},{}]}]`))
	r := newReq(t, "/x")
	var names []string
	for range 4 {
		f.send(r, 0)
		names = append(names, r.c.Arm.Name+"@"+r.c.Arm.Label)
	}
	sort.Strings(names)
	assert.Equal(t, "0/0,0/1,0/2,0/3", strings.Join(labelsOf(names), ","))
	assert.Equal(t, []string{"127.0.0.1:2@0/2", "canary@0/1", "route@0/3", "u1@0/0"}, names)
}

func labelsOf(names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, n[strings.Index(n, "@")+1:])
	}
	sort.Strings(out)
	return out
}

// An arm's headers behave as proxy-rewrite's: an empty set removes the
// header, an empty add sends nothing.
func TestArmEmptyHeaderValues(t *testing.T) {
	f := newFixture(t, 1)
	f.mustBuild(split(`[{"weighted_upstreams":[{"upstream_id":"u1","rewrite":{"headers":{"set":{"X-Drop":"","X-Keep":"1"},"add":{"X-Empty":""}}}}]}]`))
	r := newReq(t, "/x")
	f.send(r, 0)
	var got []string
	for _, op := range r.c.HeaderOps {
		got = append(got, fmt.Sprintf("%d %s=%s", op.Kind, op.Name, op.Value))
	}
	assert.Equal(t, []string{
		fmt.Sprintf("%d X-Drop=", plugin.HeaderRemove),
		fmt.Sprintf("%d X-Keep=1", plugin.HeaderSet),
	}, got)
}

// An arm's header edits are checked as proxy-rewrite's: no CR/LF or other
// control bytes in a value (they would split the upstream request head),
// and no Host or body-framing header.
func TestArmHeaderRejections(t *testing.T) {
	f := newFixture(t, 1)
	for conf, want := range map[string]string{
		`{"set":{"X-A":"a\r\nTransfer-Encoding: chunked"}}`: `header "X-A": invalid value character in header`,
		`{"X-A":"a\nb"}`:                   `header "X-A": invalid value character in header`,
		`{"set":{"Host":"evil"}}`:          `header "Host": header "Host" cannot be changed here`,
		`{"add":{"Content-Length":"0"}}`:   `header "Content-Length": header "Content-Length" cannot be changed by sluice`,
		`{"remove":["Transfer-Encoding"]}`: `header "Transfer-Encoding": header "Transfer-Encoding" cannot be changed by sluice`,
		`{"set":{"X Y":"1"}}`:              `header "X Y": invalid field character in header`,
	} {
		err := f.build(split(`[{"weighted_upstreams":[{"upstream_id":"u1","rewrite":{"headers":` + conf + `}}]}]`))
		require.Error(t, err, conf)
		assert.Contains(t, err.Error(), want, conf)
	}
}

// Building a table does not touch sluice_split_weight (the Admin API builds
// to validate a write it may still refuse); publishing its arms does.
func TestWeightGaugeFollowsPublishedTable(t *testing.T) {
	f := newFixture(t, 1)
	route := `{"id":"wg","uri":"/*","upstream":{"nodes":{"127.0.0.1:1980":1}},"plugins":{"traffic-split":{"rules":[{"weighted_upstreams":[{"upstream_id":"u1","weight":%d},{"weight":%d}]}]}}}`
	gauge := func() string {
		var b bytes.Buffer
		metrics.Set.WritePrometheus(&b)
		for _, l := range strings.Split(b.String(), "\n") {
			if strings.HasPrefix(l, `sluice_split_weight{route="wg",rule="0",arm="u1"}`) {
				return l[strings.LastIndexByte(l, ' ')+1:]
			}
		}
		return ""
	}
	f.mustBuild(fmt.Sprintf(route, 80, 20))
	assert.Equal(t, []metrics.Arm{{Route: "wg", Rule: "0", Name: "u1", Weight: 80}, {Route: "wg", Rule: "0", Name: "route", Weight: 20}}, f.tbl.SplitArms)
	metrics.SetSplitWeights(f.tbl.SplitArms)
	require.Equal(t, "80", gauge())
	f.mustBuild(fmt.Sprintf(route, 30, 70)) // built, not published
	assert.Equal(t, "80", gauge())
	metrics.SetSplitWeights(f.tbl.SplitArms)
	assert.Equal(t, "30", gauge())
}
