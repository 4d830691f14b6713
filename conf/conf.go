// Package conf owns sluice's conf/config.yaml: the APISIX 3.x layout as Go
// values, APISIX's defaults, strict decoding (inside the sections sluice
// implements, an unknown key is an error naming its path and line) and the
// admin-key policy (generated and kept in the data directory when missing;
// APISIX's published example keys and keys shorter than 32 characters
// refused).
//
// Load runs at start-up and on SIGHUP, on the main goroutine.
package conf

import "time"

// Config is the whole of config.yaml after defaults are applied.
type Config struct {
	Apisix     Apisix
	Deployment Deployment
	HTTP       HTTP // nginx_config.http
	// WorkerProcesses is nginx_config.worker_processes: the number of event
	// loops; 0 = "auto" (one per core).
	WorkerProcesses int
	PluginAttr      PluginAttr
	// Warnings collects non-fatal findings (unimplemented APISIX sections,
	// 0.0.0.0/0 with a non-loopback admin_listen) for the caller to log.
	Warnings []string
	// Path is the file this was loaded from ("" = built-in defaults).
	Path string
}

// Addr is an {ip, port} listen address.
type Addr struct {
	IP   string // default "0.0.0.0" for node_listen
	Port int
}

// Apisix is the apisix: section.
type Apisix struct {
	NodeListen  []Addr // default [{0.0.0.0 9080}]
	EnableAdmin bool   // default true
	SSL         SSL
}

// SSL is apisix.ssl.
type SSL struct {
	Listen                []Addr // default [{0.0.0.0 9443}]
	SSLTrustedCertificate string // CA file for HTTPS upstreams; "" or "system" = system roots
}

// Deployment is the deployment: section.
type Deployment struct {
	Role           string // "traditional"
	ConfigProvider string // embedded (default) | etcd | yaml
	Admin          Admin
	Embedded       Embedded
	Etcd           Etcd
}

// Admin is deployment.admin.
type Admin struct {
	AdminKeyRequired bool // default true
	AdminKey         []AdminKey
	AllowAdmin       []string // CIDRs; default ["127.0.0.0/24"]
	AdminListen      Addr     // default 127.0.0.1:9180
	// KeyGenerated is set when Load generated (or reused a generated) key
	// because none was configured; the caller prints it once.
	KeyGenerated bool
}

// AdminKey is one deployment.admin.admin_key entry.
type AdminKey struct {
	Name string
	Key  string
	Role string // admin | viewer
}

// Embedded is deployment.embedded.
type Embedded struct {
	Path string // default "./data"
}

// Etcd is deployment.etcd.
type Etcd struct {
	Host    []string      // default ["http://127.0.0.1:2379"]
	Prefix  string        // default "/apisix"
	Timeout time.Duration // default 30s
}

// HTTP is nginx_config.http.
type HTTP struct {
	ClientHeaderTimeout time.Duration // default 60s
	ClientBodyTimeout   time.Duration // default 60s
	SendTimeout         time.Duration // default 60s
	KeepaliveTimeout    time.Duration // default 60s
	ClientMaxBodySize   int64         // bytes, 0 = unlimited (default)
	// LargeClientHeaderBuffers is the largest request head in bytes
	// (nginx "4 8k" → 32k; a plain size such as "32k" is accepted too).
	LargeClientHeaderBuffers int // default 32 KiB
}

// PluginAttr is plugin_attr.
type PluginAttr struct {
	Prometheus Prometheus
}

// Prometheus is plugin_attr.prometheus.
type Prometheus struct {
	ExportAddr     Addr      // default 127.0.0.1:9091
	ExportURI      string    // default /apisix/prometheus/metrics
	DefaultBuckets []float64 // ms; default APISIX's
}
