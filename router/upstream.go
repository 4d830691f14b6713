package router

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/model"
)

// Upstream defaults (APISIX / nginx).
const (
	defaultTimeout       = 60 * time.Second // nginx proxy_{connect,send,read}_timeout
	defaultKeepaliveSize = 320              // nginx_config.http.upstream.keepalive
	defaultKeepaliveIdle = 60 * time.Second // keepalive_timeout
	defaultKeepaliveReqs = 1000             // keepalive_requests
	lookupTimeout        = 5 * time.Second  // APISIX resolver_timeout
)

// compileUpstream compiles m into a balancer.Upstream identified by key
// ("upstreams/1", "routes/r1/upstream", "services/s1/upstream", and for
// traffic-split arms whatever key the plugin chooses). Index is left 0 for
// the caller to set. Host-name nodes are resolved with b.Resolver (every
// address, deduplicated and sorted); node health comes from b.Registry by
// (key, "host:port"). It runs on the builder goroutine and may block on DNS.
//
// Errors read `router: upstream "<key>": <field>: <reason>`.
func (b *Builder) compileUpstream(key string, m *model.Upstream) (*balancer.Upstream, error) {
	errf := func(format string, args ...any) error {
		return fmt.Errorf("router: upstream %q: "+format, append([]any{key}, args...)...)
	}
	if m == nil {
		return nil, errf("missing")
	}
	if b.Registry == nil {
		b.Registry = balancer.NewRegistry()
	}
	if b.Resolver == nil {
		b.Resolver = net.DefaultResolver
	}
	u := &balancer.Upstream{Key: key}

	switch m.Type {
	case "", "roundrobin":
		u.Kind = balancer.RoundRobin
	case "chash":
		u.Kind = balancer.CHash
	case "least_conn":
		u.Kind = balancer.LeastConn
	case "ewma":
		u.Kind = balancer.EWMA
	default:
		return nil, errf("type %q: want roundrobin, chash, least_conn or ewma", m.Type)
	}

	defPort := 80
	switch m.Scheme {
	case "", "http":
		u.Scheme = "http"
	case "https":
		u.Scheme = "https"
		defPort = 443
	default:
		return nil, errf("scheme %q: want http or https", m.Scheme)
	}

	switch m.PassHost {
	case "", "pass":
		u.PassHost = balancer.PassClient
	case "node":
		u.PassHost = balancer.PassNode
	case "rewrite":
		if m.UpstreamHost == "" {
			return nil, errf("pass_host \"rewrite\" requires upstream_host")
		}
		u.PassHost = balancer.PassRewrite
	default:
		return nil, errf("pass_host %q: want pass, node or rewrite", m.PassHost)
	}
	if m.UpstreamHost != "" {
		u.UpstreamHost = []byte(m.UpstreamHost)
	}

	switch m.HashOn {
	case "", "vars":
		u.HashOn = balancer.HashVars
	case "header":
		u.HashOn = balancer.HashHeader
	case "cookie":
		u.HashOn = balancer.HashCookie
	case "consumer":
		u.HashOn = balancer.HashConsumer
	case "vars_combinations":
		u.HashOn = balancer.HashVarsCombinations
	default:
		return nil, errf("hash_on %q: want vars, header, cookie, consumer or vars_combinations", m.HashOn)
	}
	u.HashKey = m.Key
	if u.Kind == balancer.CHash && u.HashOn != balancer.HashConsumer && m.Key == "" {
		return nil, errf("key: required for type chash (unless hash_on is consumer)")
	}

	var err error
	if u.Timeouts, err = timeouts(m.Timeout); err != nil {
		return nil, errf("%w", err)
	}

	u.Retries = max(len(m.Nodes)-1, 0) // APISIX balancer.lua: number of nodes - 1
	if m.Retries != nil {
		if *m.Retries < 0 {
			return nil, errf("retries %d: want >= 0", *m.Retries)
		}
		u.Retries = *m.Retries
	}
	if m.RetryTimeout < 0 {
		return nil, errf("retry_timeout %v: want >= 0", m.RetryTimeout)
	}
	u.RetryTimeout = seconds(m.RetryTimeout)

	u.Keepalive = balancer.Keepalive{Size: defaultKeepaliveSize, IdleTimeout: defaultKeepaliveIdle, Requests: defaultKeepaliveReqs}
	if kp := m.KeepalivePool; kp != nil {
		if kp.Size < 0 || kp.IdleTimeout < 0 || kp.Requests < 0 {
			return nil, errf("keepalive_pool: values must be >= 0")
		}
		if kp.Size > 0 {
			u.Keepalive.Size = kp.Size
		}
		if kp.IdleTimeout > 0 {
			u.Keepalive.IdleTimeout = seconds(kp.IdleTimeout)
		}
		if kp.Requests > 0 {
			u.Keepalive.Requests = kp.Requests
		}
	}

	// sluice verifies upstream certificates unless tls.verify is false
	// (APISIX never does; SPEC §5).
	u.TLS.Verify = true
	if t := m.TLS; t != nil {
		if t.Verify != nil {
			u.TLS.Verify = *t.Verify
		}
		if (t.ClientCert == "") != (t.ClientKey == "") {
			return nil, errf("tls: client_cert and client_key go together")
		}
		if t.ClientCert != "" {
			u.TLS.ClientCert = []byte(t.ClientCert)
			u.TLS.ClientKey = []byte(t.ClientKey)
			u.TLS.Identity = sha256.Sum256([]byte(t.ClientCert + "\x00" + t.ClientKey))
		}
	}
	if u.PassHost == balancer.PassRewrite {
		// SNI and the verified name are the host alone (nginx strips the
		// port from proxy_ssl_name); the Host header keeps it.
		u.TLS.ServerName = sniHost(m.UpstreamHost)
	}

	u.Nodes = make([]balancer.Node, 0, len(m.Nodes))
	for i, mn := range m.Nodes {
		n, err := b.node(key, &mn, defPort)
		var ue *UnresolvedError
		if b.tolerant && errors.As(err, &ue) && (b.tolerate == nil || b.tolerate(ue.Host)) {
			b.skipped = append(b.skipped, ue.Host)
			continue
		}
		if err != nil {
			return nil, errf("nodes[%d]: %w", i, err)
		}
		u.Nodes = append(u.Nodes, n)
	}
	if len(u.Nodes) == 0 {
		// APISIX accepts an upstream without nodes and answers 502 at
		// request time; Pick returns -1 for it. balancer.Build refuses
		// empty node lists, so it is skipped here.
		return u, nil
	}
	if err := u.Build(); err != nil {
		return nil, err // "balancer: upstream <key>: ..."
	}
	return u, nil
}

// node compiles one node: default port, Host header, resolved addresses and
// shared health state.
func (b *Builder) node(key string, mn *model.Node, defPort int) (balancer.Node, error) {
	host := mn.Host
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1] // "[::1]" from the map form
	}
	if host == "" {
		return balancer.Node{}, fmt.Errorf("empty host")
	}
	port := mn.Port
	if port == 0 {
		port = defPort
	}
	if port < 1 || port > 65535 {
		return balancer.Node{}, fmt.Errorf("port %d out of range", port)
	}
	if mn.Weight < 0 {
		return balancer.Node{}, fmt.Errorf("weight %d: want >= 0", mn.Weight)
	}
	addrs, err := b.resolve(host)
	if err != nil {
		return balancer.Node{}, err
	}
	n := balancer.Node{
		Host:     host,
		Port:     port,
		Weight:   mn.Weight,
		Priority: mn.Priority,
		Addrs:    make([]netip.AddrPort, len(addrs)),
	}
	for i, a := range addrs {
		n.Addrs[i] = netip.AddrPortFrom(a, uint16(port))
	}
	// APISIX parse_server_for_upstream_host: ":port" only when it is not the
	// scheme's default; IPv6 literals in brackets.
	hp := host
	if strings.IndexByte(host, ':') >= 0 {
		hp = "[" + host + "]"
	}
	hh := hp
	if port != defPort {
		hh += ":" + strconv.Itoa(port)
	}
	n.HostHeader = []byte(hh)
	n.State = b.Registry.State(key, net.JoinHostPort(host, strconv.Itoa(port)))
	return n, nil
}

// resolve returns host's addresses: an IP literal as is, a name through
// b.Resolver (all answers, unmapped, deduplicated, sorted so a rebuild with
// the same answers gives the same node). Answers are cached for the current
// Build only.
func (b *Builder) resolve(host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	if addrs, ok := b.dns[host]; ok {
		if addrs == nil {
			return nil, b.dnsErr[host] // failed once in this Build: not again
		}
		return addrs, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	res, err := b.Resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		ue := &UnresolvedError{Host: host, Err: err}
		b.noteFailure(host, ue)
		return nil, ue
	}
	addrs := make([]netip.Addr, 0, len(res))
	for _, a := range res {
		if a.IsValid() {
			addrs = append(addrs, a.Unmap())
		}
	}
	slices.SortFunc(addrs, func(x, y netip.Addr) int { return x.Compare(y) })
	addrs = slices.Compact(addrs)
	if len(addrs) == 0 {
		ue := &UnresolvedError{Host: host, Err: errors.New("no addresses")}
		b.noteFailure(host, ue)
		return nil, ue
	}
	if b.dns != nil {
		b.dns[host] = addrs
	}
	return addrs, nil
}

// noteFailure remembers, for the rest of this Build, that host did not
// resolve (a name many upstreams use costs one lookup timeout, not many).
func (b *Builder) noteFailure(host string, err error) {
	if b.dns == nil {
		return
	}
	b.dns[host] = nil
	if b.dnsErr == nil {
		b.dnsErr = map[string]error{}
	}
	b.dnsErr[host] = err
}

// timeouts converts APISIX's {connect, send, read} seconds; an absent or
// zero value is the 60 s default.
func timeouts(t *model.Timeout) (balancer.Timeouts, error) {
	out := balancer.Timeouts{Connect: defaultTimeout, Send: defaultTimeout, Read: defaultTimeout}
	if t == nil {
		return out, nil
	}
	for _, f := range []struct {
		name string
		v    float64
		d    *time.Duration
	}{{"connect", t.Connect, &out.Connect}, {"send", t.Send, &out.Send}, {"read", t.Read, &out.Read}} {
		if f.v < 0 {
			return out, fmt.Errorf("timeout.%s %v: want > 0", f.name, f.v)
		}
		if f.v > 0 {
			*f.d = seconds(f.v)
		}
	}
	return out, nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// sniHost is h without a port, and an IPv6 literal without its brackets.
func sniHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
}
