package router

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/engine/http1"
	"github.com/sluice-gw/sluice/model"
)

// newRequest parses "method target HTTP/1.1" with the given header lines
// ("Name: value"); without a Host line it sends "Host: localhost". The
// remote address is 127.0.0.1.
func newRequest(tb testing.TB, method, target string, headers ...string) *Request {
	tb.Helper()
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\n")
	host := false
	for _, h := range headers {
		if strings.HasPrefix(strings.ToLower(h), "host:") {
			host = true
		}
		b.WriteString(h + "\r\n")
	}
	if !host {
		b.WriteString("Host: localhost\r\n")
	}
	b.WriteString("\r\n")
	req := &http1.Request{Headers: make([]http1.Header, 0, 100)}
	_, err := http1.ParseRequest(req, []byte(b.String()), &http1.Limits{})
	require.NoError(tb, err)
	return &Request{Request: req, RemoteAddr: netip.MustParseAddr("127.0.0.1")}
}

// from sets the request's remote address.
func from(r *Request, addr string) *Request {
	r.RemoteAddr = netip.MustParseAddr(addr)
	return r
}

// route returns a model route with id and uri, changed by opts.
func route(id, uri string, opts ...func(*model.Route)) *model.Route {
	r := &model.Route{ID: model.ID(id), URI: uri}
	for _, o := range opts {
		o(r)
	}
	return r
}

func withPriority(p int) func(*model.Route) { return func(r *model.Route) { r.Priority = p } }
func withMethods(m ...string) func(*model.Route) {
	return func(r *model.Route) { r.Methods = m }
}
func withHosts(h ...string) func(*model.Route) { return func(r *model.Route) { r.Hosts = h } }
func withVars(v string) func(*model.Route) {
	return func(r *model.Route) { r.Vars = json.RawMessage(v) }
}
func withRemote(a ...string) func(*model.Route) {
	return func(r *model.Route) { r.RemoteAddrs = a }
}

// buildTable builds a table from routes with a fake resolver.
func buildTable(tb testing.TB, routes ...*model.Route) *Table {
	tb.Helper()
	b := &Builder{Resolver: fakeResolver{}}
	t, err := b.Build(&model.Snapshot{Routes: routes})
	require.NoError(tb, err)
	return t
}

// matchID returns the id of the route r matches, "" for none.
func matchID(t *Table, r *Request) string {
	if rt := t.Match(r); rt != nil {
		return rt.ID
	}
	return ""
}

// fakeResolver answers from a map; unknown names fail.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if _, ok := ctx.Deadline(); !ok {
		return nil, errors.New("no deadline")
	}
	ips, ok := f[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	var out []netip.Addr
	for _, ip := range ips {
		out = append(out, netip.MustParseAddr(ip))
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }
