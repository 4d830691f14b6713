// Package balancer owns compiled upstreams (nodes, type, scheme, pass_host,
// timeouts, retries, keepalive settings as plain data), the pickers (smooth
// weighted round-robin, consistent hashing, least_conn, ewma) with their
// per-event-loop Cursor, and node health that outlives routing-table swaps.
//
// An Upstream is immutable once built and is read from every event loop
// without locks. A Cursor belongs to one event loop: only that loop may call
// its methods. NodeState is shared and uses atomics.
package balancer

import (
	"net/netip"
	"time"
)

// Kind is the balancing algorithm (APISIX upstream.type).
type Kind uint8

const (
	RoundRobin Kind = iota // smooth weighted round-robin (nginx)
	CHash                  // consistent hashing (xxhash)
	LeastConn
	EWMA
)

// PassHost is APISIX's pass_host.
type PassHost uint8

const (
	PassClient  PassHost = iota // "pass": keep the client's Host (default)
	PassNode                    // "node": the node's host, ":port" unless the scheme's default
	PassRewrite                 // "rewrite": UpstreamHost
)

// HashOn is APISIX's hash_on for chash.
type HashOn uint8

const (
	HashVars HashOn = iota // key is an nginx variable name: remote_addr, uri, arg_x, http_x, cookie_x ...
	HashHeader
	HashCookie
	HashConsumer
	HashVarsCombinations
)

// Node is one configured node of an upstream.
type Node struct {
	Host     string           // as configured: a name or an IP literal
	Port     int              // resolved default: 80 / 443 by scheme
	Weight   int              // 0 = never picked (unless it is the only node)
	Priority int              // higher is tried first; lower only when all higher are down
	Addrs    []netip.AddrPort // resolved addresses, at least one; traffic is spread over them
	// HostHeader is the Host value for pass_host "node": Host, with ":port"
	// appended when Port is not the scheme's default.
	HostHeader []byte
	// State is the node's shared health. It is looked up by (upstream key,
	// host:port) at build time, so it survives table swaps.
	State *NodeState
}

// Timeouts of an upstream; zero means the default (60 s each, as nginx).
type Timeouts struct {
	Connect time.Duration
	Send    time.Duration
	Read    time.Duration
}

// Keepalive is the upstream connection pool policy per event loop.
type Keepalive struct {
	Size        int           // max idle connections per (loop, address); default 320
	IdleTimeout time.Duration // default 60 s
	Requests    int           // requests per connection before it is closed; default 1000
}

// TLS is the upstream TLS policy (used by package tls).
type TLS struct {
	Verify     bool     // verify the certificate chain and name (sluice default: true)
	ServerName string   // SNI override (pass_host rewrite's upstream_host); "" = node host
	ClientCert []byte   // PEM, for mutual TLS
	ClientKey  []byte   // PEM
	Identity   [32]byte // sha256 of ClientCert and ClientKey (zero: none): pools key on it, so they outlive table rebuilds
}

// Upstream is a compiled upstream. Immutable after Build.
type Upstream struct {
	// Key identifies the upstream across table generations ("upstreams/1",
	// "routes/r1/upstream", "routes/r1/traffic-split/0/1"); cursor positions
	// and node state carry over between generations by Key.
	Key string
	// Index is dense within one table (0..n-1) so an event loop can keep its
	// cursors in a slice.
	Index int

	Kind     Kind
	HashOn   HashOn
	HashKey  string // chash key (variable name, header name, cookie name)
	Nodes    []Node // sorted by Priority, highest first
	Scheme   string // "http" or "https"
	PassHost PassHost
	// UpstreamHost is the Host for PassRewrite (and the SNI for https).
	UpstreamHost []byte
	Timeouts     Timeouts
	Retries      int           // extra tries after the first; APISIX default nodes-1
	RetryTimeout time.Duration // 0 = no limit
	Keepalive    Keepalive
	TLS          TLS

	ring   []ringPoint // chash ring sorted by hash, built by Build (CHash only)
	groups []int32     // start index of each priority group in Nodes, then len(Nodes)
	rank   []int32     // node i's position in (Host, Port) order: the SWRR tie-break
}

type ringPoint struct {
	hash uint64
	node int32
}
