package admin

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzWrite sends arbitrary bodies through PUT and PATCH (whole and
// sub-path) of a route: the Admin API never panics, never answers 5xx
// with a working store, and whatever it accepts reads back as JSON and is
// published.
func FuzzWrite(f *testing.F) {
	for _, s := range []string{
		guideV1, guideSplit, `{"uri":"/a","upstream":{"nodes":[{"host":"127.0.0.1","weight":1}]}}`,
		`{"uri":"/a","desc":null}`, `{"upstream":{"nodes":{"127.0.0.1:2":null}}}`, `"/x"`, `[1,2]`, `null`, `{`,
		`{"uri":"/a","plugins":{"traffic-split":{"rules":[{"weighted_upstreams":[{"upstream_id":1}]}]}}}`,
		`{"uri":"/a","vars":[["arg_a","~~","("]],"upstream":{"nodes":{"127.0.0.1:1":1}}}`,
	} {
		f.Add(s, "")
		f.Add(s, "upstream")
	}
	e := newEnv(f, envOpt{})
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/base", routeBody("/base", 1))
	f.Fuzz(func(t *testing.T, body, sub string) {
		e := *e // e.t must be the fuzz target's t
		e.t = t
		check := func(r resp) {
			if r.code >= 500 {
				t.Fatalf("status %d for %q: %s", r.code, body, r.body)
			}
			if !json.Valid([]byte(r.body)) {
				t.Fatalf("not JSON: %q", r.body)
			}
		}
		check(e.do("PUT", "/apisix/admin/routes/fz", body))
		path := "/apisix/admin/routes/base"
		if sub != "" {
			segs := strings.Split(sub, "/")
			for i := range segs {
				segs[i] = url.PathEscape(segs[i])
			}
			path += "/" + strings.Join(segs, "/")
		}
		check(e.do("PATCH", path, body))
		g := e.do("GET", "/apisix/admin/routes/base", "")
		if g.code != http.StatusOK {
			t.Fatalf("base lost: %d %s", g.code, g.body)
		}
		if e.pub.Load() == nil {
			t.Fatal("no table")
		}
	})
}
