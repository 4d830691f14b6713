// Package model holds the APISIX resource shapes sluice accepts (routes,
// upstreams, services, ...) as Go values decoded from JSON, with validation
// whose messages name the offending field, and Snapshot: one consistent set
// of resources from which router.Build makes a routing table.
//
// Values are plain data. A Snapshot handed to router.Build must not be
// changed afterwards.
//
// JSON from clients goes through DecodeRoute, DecodeUpstream and
// DecodeService (strict: unknown keys and wrong types are errors worded as
// APISIX's jsonschema words them), then Validate. Nothing here is on the
// data path; any goroutine may call anything, on values it owns.
package model

import (
	"encoding/json"
	"net/netip"
)

// Route is an APISIX route (apisix/schema_def.lua route).
type Route struct {
	ID              ID                         `json:"id,omitempty"`
	Name            string                     `json:"name,omitempty"`
	Desc            string                     `json:"desc,omitempty"`
	Labels          map[string]string          `json:"labels,omitempty"`
	URI             string                     `json:"uri,omitempty"`
	URIs            []string                   `json:"uris,omitempty"`
	Methods         []string                   `json:"methods,omitempty"`
	Host            string                     `json:"host,omitempty"`
	Hosts           []string                   `json:"hosts,omitempty"`
	RemoteAddr      string                     `json:"remote_addr,omitempty"`
	RemoteAddrs     []string                   `json:"remote_addrs,omitempty"`
	Vars            json.RawMessage            `json:"vars,omitempty"` // lua-resty-expr array
	Priority        int                        `json:"priority,omitempty"`
	Upstream        *Upstream                  `json:"upstream,omitempty"`
	UpstreamID      ID                         `json:"upstream_id,omitempty"`
	ServiceID       ID                         `json:"service_id,omitempty"`
	Plugins         map[string]json.RawMessage `json:"plugins,omitempty"`
	PluginConfigID  ID                         `json:"plugin_config_id,omitempty"`
	Timeout         *Timeout                   `json:"timeout,omitempty"`
	EnableWebsocket bool                       `json:"enable_websocket,omitempty"`
	Status          *int                       `json:"status,omitempty"` // 1 enabled (default), 0 disabled
	CreateTime      int64                      `json:"create_time,omitempty"`
	UpdateTime      int64                      `json:"update_time,omitempty"`

	// Invalid: the stored route did not decode or validate (another
	// writer's); only its match fields are set (DecodeRouteMatch).
	Invalid error `json:"-"`
	// HostsUnknown: an Invalid route whose host list did not read.
	HostsUnknown bool `json:"-"`
}

// Service is an APISIX service: shared upstream and plugins for routes.
type Service struct {
	ID              ID                         `json:"id,omitempty"`
	Name            string                     `json:"name,omitempty"`
	Desc            string                     `json:"desc,omitempty"`
	Labels          map[string]string          `json:"labels,omitempty"`
	Upstream        *Upstream                  `json:"upstream,omitempty"`
	UpstreamID      ID                         `json:"upstream_id,omitempty"`
	Plugins         map[string]json.RawMessage `json:"plugins,omitempty"`
	Hosts           []string                   `json:"hosts,omitempty"`
	EnableWebsocket bool                       `json:"enable_websocket,omitempty"`
	CreateTime      int64                      `json:"create_time,omitempty"`
	UpdateTime      int64                      `json:"update_time,omitempty"`

	// Invalid: the stored service did not decode or validate (another
	// writer's); only Hosts is set (DecodeServiceHosts).
	Invalid error `json:"-"`
	// HostsUnknown: an Invalid service whose host list did not read.
	HostsUnknown bool `json:"-"`
}

// Upstream is an APISIX upstream (apisix/schema_def.lua upstream_schema).
type Upstream struct {
	ID            ID                `json:"id,omitempty"`
	Name          string            `json:"name,omitempty"`
	Desc          string            `json:"desc,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	Type          string            `json:"type,omitempty"` // roundrobin (default) | chash | least_conn | ewma
	Nodes         Nodes             `json:"nodes"`
	Scheme        string            `json:"scheme,omitempty"`    // http (default) | https
	PassHost      string            `json:"pass_host,omitempty"` // pass (default) | node | rewrite
	UpstreamHost  string            `json:"upstream_host,omitempty"`
	HashOn        string            `json:"hash_on,omitempty"` // vars (default) | header | cookie | consumer | vars_combinations
	Key           string            `json:"key,omitempty"`
	Timeout       *Timeout          `json:"timeout,omitempty"`
	Retries       *int              `json:"retries,omitempty"` // default: number of nodes - 1
	RetryTimeout  float64           `json:"retry_timeout,omitempty"`
	KeepalivePool *KeepalivePool    `json:"keepalive_pool,omitempty"`
	TLS           *UpstreamTLS      `json:"tls,omitempty"`
	Checks        json.RawMessage   `json:"checks,omitempty"`
	CreateTime    int64             `json:"create_time,omitempty"`
	UpdateTime    int64             `json:"update_time,omitempty"`

	// nodesRaw is "nodes" exactly as decoded (nil for an Upstream built in
	// Go), so that MarshalJSON echoes the form the client sent: the Admin
	// API must return what it was given. Because of it, compare decoded
	// Upstreams with each other, not with literals.
	nodesRaw json.RawMessage
}

// Node is one upstream node. In JSON, Nodes is either {"host:port": weight}
// or [{"host","port","weight","priority"}]; both decode to []Node (map form
// sorted by key so the order is deterministic).
type Node struct {
	Host     string `json:"host"`           // name or IP, IPv6 without brackets
	Port     int    `json:"port,omitempty"` // 0: the scheme's default (80 / 443)
	Weight   int    `json:"weight"`
	Priority int    `json:"priority,omitempty"`
}

// Nodes decodes both APISIX node forms.
type Nodes []Node

// Timeout is APISIX's {connect, send, read} in seconds.
type Timeout struct {
	Connect float64 `json:"connect"`
	Send    float64 `json:"send"`
	Read    float64 `json:"read"`
}

// KeepalivePool is APISIX's upstream keepalive_pool.
type KeepalivePool struct {
	Size        int     `json:"size"`         // default 320
	IdleTimeout float64 `json:"idle_timeout"` // seconds, default 60
	Requests    int     `json:"requests"`     // default 1000
}

// UpstreamTLS is APISIX's upstream tls object (verify is a sluice default of
// true: APISIX never verifies).
type UpstreamTLS struct {
	ClientCert string `json:"client_cert,omitempty"`
	ClientKey  string `json:"client_key,omitempty"`
	Verify     *bool  `json:"verify,omitempty"`
}

// Snapshot is one consistent set of resources. Maps are keyed by id.
type Snapshot struct {
	Routes        []*Route
	Upstreams     map[string]*Upstream
	Services      map[string]*Service
	PluginConfigs map[string]json.RawMessage
	GlobalRules   map[string]json.RawMessage
	Consumers     map[string]*Consumer
}

// Consumer is an APISIX consumer: a username and its plugins (key-auth's
// key, ...).
type Consumer struct {
	Username string                     `json:"username"`
	Plugins  map[string]json.RawMessage `json:"plugins,omitempty"`

	// Invalid: the stored consumer did not decode or validate (another
	// writer's); only its plugins' configurations are set, as read
	// (DecodeConsumerPlugins). It authenticates nobody, and its keys
	// authenticate nobody either.
	Invalid error `json:"-"`
}

// NewSnapshot returns an empty Snapshot with its maps made.
func NewSnapshot() *Snapshot {
	return &Snapshot{
		Upstreams:     map[string]*Upstream{},
		Services:      map[string]*Service{},
		PluginConfigs: map[string]json.RawMessage{},
		GlobalRules:   map[string]json.RawMessage{},
		Consumers:     map[string]*Consumer{},
	}
}

// ID is a resource id. In JSON it is a string or an integer (APISIX accepts
// both); it is always handled as a string.
type ID string

// HasHostNames reports whether any upstream node in s (routes' inline
// upstreams, upstreams, services' upstreams) is a host name rather than an
// IP literal: such a snapshot must be rebuilt now and then to follow DNS.
func (s *Snapshot) HasHostNames() bool {
	named := func(u *Upstream) bool {
		if u == nil {
			return false
		}
		for _, n := range u.Nodes {
			if _, err := netip.ParseAddr(n.Host); err != nil {
				return true
			}
		}
		return false
	}
	for _, r := range s.Routes {
		if named(r.Upstream) {
			return true
		}
	}
	for _, u := range s.Upstreams {
		if named(u) {
			return true
		}
	}
	for _, sv := range s.Services {
		if named(sv.Upstream) {
			return true
		}
	}
	return false
}
