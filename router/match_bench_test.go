package router

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/model"
)

// benchRoutes returns n prefix routes "/svc<i>/v<j>/*" of varied depth plus
// exact routes, like a gateway fronting many services.
func benchRoutes(n int) []*model.Route {
	var rs []*model.Route
	for i := 0; len(rs) < n; i++ {
		rs = append(rs,
			route(fmt.Sprintf("p%d", i), fmt.Sprintf("/svc%d/*", i)),
			route(fmt.Sprintf("pv%d", i), fmt.Sprintf("/svc%d/v1/models/*", i)),
			route(fmt.Sprintf("e%d", i), fmt.Sprintf("/svc%d/v1/chat/completions", i)),
		)
	}
	return rs[:n]
}

func benchMatch(b *testing.B, tbl *Table, r *Request, wantID string) {
	b.Helper()
	if got := matchID(tbl, r); got != wantID {
		b.Fatalf("matched %q, want %q", got, wantID)
	}
	b.ReportAllocs()
	for b.Loop() {
		if tbl.Match(r) == nil {
			b.Fatal("no match")
		}
	}
}

func BenchmarkMatchExact(b *testing.B) {
	tbl := buildTable(b, benchRoutes(100)...)
	benchMatch(b, tbl, newRequest(b, "POST", "/svc20/v1/chat/completions"), "e20")
}

func BenchmarkMatchPrefix(b *testing.B) {
	tbl := buildTable(b, benchRoutes(100)...)
	benchMatch(b, tbl, newRequest(b, "GET", "/svc20/v1/models/gpt-4o-mini/versions?x=1"), "pv20")
}

// BenchmarkMatchPrefixLinear is the baseline twin of BenchmarkMatchPrefix:
// a linear scan for the longest matching prefix over the same 100 routes.
func BenchmarkMatchPrefixLinear(b *testing.B) {
	rs := benchRoutes(100)
	type pr struct{ id, prefix string }
	var ps []pr
	for _, r := range rs {
		if p, ok := strings.CutSuffix(r.URI, "*"); ok {
			ps = append(ps, pr{string(r.ID), p})
		}
	}
	r := newRequest(b, "GET", "/svc20/v1/models/gpt-4o-mini/versions?x=1")
	b.ReportAllocs()
	for b.Loop() {
		best := -1
		for i := range ps {
			if len(r.Path) >= len(ps[i].prefix) && string(r.Path[:len(ps[i].prefix)]) == ps[i].prefix &&
				(best < 0 || len(ps[i].prefix) > len(ps[best].prefix)) {
				best = i
			}
		}
		if best < 0 || ps[best].id != "pv20" {
			b.Fatal("wrong match")
		}
	}
}

func BenchmarkMatchVars(b *testing.B) {
	rs := append(benchRoutes(99), route("canary", "/svc20/v1/chat/completions", withPriority(1),
		withVars(`[["http_x_canary","==","1"],["arg_user","~~","^j"],["arg_age",">",18]]`)))
	tbl := buildTable(b, rs...)
	r := newRequest(b, "POST", "/svc20/v1/chat/completions?user=jack&age=30",
		"Host: api.example.com", "Content-Type: application/json", "Authorization: Bearer x", "X-Canary: 1")
	benchMatch(b, tbl, r, "canary")
}

func BenchmarkMatchHost(b *testing.B) {
	rs := benchRoutes(90)
	for i := 0; i < 10; i++ {
		rs = append(rs, route(fmt.Sprintf("h%d", i), "/v1/*", withHosts(fmt.Sprintf("*.tenant%d.example.com", i))))
	}
	tbl := buildTable(b, rs...)
	benchMatch(b, tbl, newRequest(b, "GET", "/v1/chat", "Host: API.tenant7.example.com:9080"), "h7")
}

// BenchmarkBuild10k compares a strict build of 10,000 routes with an
// isolated one (BuildIsolated, the Admin API's: it clones the shared
// plugin state per route and checks services alone). The Admin API runs
// one build per write.
func BenchmarkBuild10k(b *testing.B) {
	rs := benchRoutes(10000)
	for _, r := range rs {
		r.Upstream = &model.Upstream{Nodes: model.Nodes{{Host: "10.0.0.1", Port: 80, Weight: 1}}}
	}
	snap := &model.Snapshot{Routes: rs}
	b.Run("strict", func(b *testing.B) {
		bl := &Builder{Resolver: fakeResolver{}}
		for b.Loop() {
			if _, err := bl.Build(snap); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("isolated", func(b *testing.B) {
		bl := &Builder{Resolver: fakeResolver{}}
		for b.Loop() {
			if _, _, err := bl.BuildIsolated(snap, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
