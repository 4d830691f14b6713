// Package conf owns sluice's conf/config.yaml: the APISIX 3.x layout as Go
// values, APISIX's defaults, strict decoding (inside the sections sluice
// implements, an unknown key is an error naming its path and line) and the
// admin-key policy (generated and kept in the data directory when missing;
// APISIX's published example keys and keys shorter than 32 characters
// refused).
//
// Load runs at start-up and on SIGHUP, on the main goroutine. The package has
// no global state: Load, Parse, Default, Validate and GenerateKey may be
// called from any goroutine, and a *Config is not changed after Load returns,
// so it may be read concurrently.
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
	// BusyPoll is nginx_config.busy_poll (a sluice key): how long an event
	// loop keeps polling its sockets after its last event before it sleeps.
	// 0 (default) sleeps at once, as nginx does.
	BusyPoll   time.Duration
	PluginAttr PluginAttr
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
	NodeListen []Addr // default [{0.0.0.0 9080}]
	// EnableAdmin is apisix.enable_admin (also accepted as
	// deployment.admin.enable_admin); default true. Load sets it to false for
	// deployment.role data_plane, which has no Admin API in APISIX.
	EnableAdmin bool
	SSL         SSL
}

// SSL is apisix.ssl.
type SSL struct {
	Listen                []Addr // default [{0.0.0.0 9443}]
	SSLTrustedCertificate string // CA file for HTTPS upstreams; "" or "system" = system roots
}

// Deployment is the deployment: section.
type Deployment struct {
	// Role is "traditional" (default), or "data_plane", APISIX's standalone
	// layout (role_data_plane.config_provider: yaml), which Load turns into
	// ConfigProvider "yaml" with the Admin API off.
	Role           string
	ConfigProvider string // embedded (default) | etcd | yaml
	Admin          Admin
	Embedded       Embedded
	Etcd           Etcd
}

// Admin is deployment.admin.
type Admin struct {
	// AdminKeyRequired is false only when the file says so explicitly
	// (Load then adds a warning). When it is true and AdminKey is empty (only
	// possible with config_provider yaml or enable_admin false, where no key is
	// generated), no request can authenticate.
	AdminKeyRequired bool // default true
	// AdminKey never holds an entry with an empty key after Load: such an
	// entry is replaced by the generated key (role admin) or dropped (role
	// viewer, or no key is generated in this mode).
	AdminKey   []AdminKey
	AllowAdmin []string // CIDRs, normalised (a bare IP becomes /32 or /128); default ["127.0.0.0/24"]
	// AdminListen is where the Admin API listens; default 127.0.0.1:9180
	// (APISIX listens on 0.0.0.0).
	AdminListen Addr
	// KeyGenerated is set when Load generated (or reused a generated) key
	// because none was configured; the caller prints it once.
	KeyGenerated bool
	// KeyFile is the file that keeps the generated key
	// (<deployment.embedded.path>/admin_key, mode 0600); "" when no key was
	// generated.
	KeyFile string
	// KeyCreated is true only on the Load that created KeyFile; on later
	// starts the stored key is reused and KeyCreated is false.
	KeyCreated bool
}

// AdminKey is one deployment.admin.admin_key entry.
type AdminKey struct {
	Name string
	Key  string // at least 32 characters; never logged
	Role string // admin | viewer; default admin (as APISIX: only viewer is restricted)
}

// Embedded is deployment.embedded (a sluice key; APISIX has no embedded store).
type Embedded struct {
	// Path is the data directory: the embedded store and the generated
	// admin_key file live here. Relative to the process's working directory.
	Path string // default "./data"
}

// Etcd is deployment.etcd.
type Etcd struct {
	Host    []string      // http(s) URLs; default ["http://127.0.0.1:2379"]
	Prefix  string        // default "/apisix"
	Timeout time.Duration // whole seconds in the file; default 30s
}

// HTTP is nginx_config.http.
type HTTP struct {
	ClientHeaderTimeout time.Duration // default 60s
	ClientBodyTimeout   time.Duration // default 60s
	SendTimeout         time.Duration // default 60s
	KeepaliveTimeout    time.Duration // default 60s
	ClientMaxBodySize   int64         // bytes, 0 = unlimited (default)
	// ProxyBusyBuffersSize (nginx proxy_busy_buffers_size) caps the bytes
	// buffered for a peer that reads slower than the other side sends; past
	// it sluice stops reading the fast side. Default 1m; 0 = no cap.
	ProxyBusyBuffersSize int64
	// LargeClientHeaderBuffers is the largest request head in bytes
	// (nginx "4 8k" → 32k; a plain size such as "32k" is accepted too).
	LargeClientHeaderBuffers int // default 32 KiB
	// EnableAccessLog is nginx_config.http.enable_access_log; default true.
	// access_log: off also turns it off.
	EnableAccessLog bool
	// AccessLog is nginx_config.http.access_log: the access log file,
	// relative to the working directory, or "-" for stdout; default
	// "logs/access.log".
	AccessLog string
}

// PluginAttr is plugin_attr.
type PluginAttr struct {
	Prometheus Prometheus
}

// Prometheus is plugin_attr.prometheus.
type Prometheus struct {
	ExportAddr     Addr      // default 127.0.0.1:9091
	ExportURI      string    // default /apisix/prometheus/metrics
	DefaultBuckets []float64 // ms, strictly increasing; default APISIX's
}

// Default returns the built-in defaults (SPEC §2, §3), the configuration of
// "sluice run" without a file, before the admin-key policy: AdminKey is empty
// (Load generates a key for it). It allocates a new Config on every call.
func Default() *Config {
	return &Config{
		Apisix: Apisix{
			NodeListen:  []Addr{{IP: "0.0.0.0", Port: 9080}},
			EnableAdmin: true,
			SSL: SSL{
				Listen: []Addr{{IP: "0.0.0.0", Port: 9443}},
			},
		},
		Deployment: Deployment{
			Role:           RoleTraditional,
			ConfigProvider: ProviderEmbedded,
			Admin: Admin{
				AdminKeyRequired: true,
				AllowAdmin:       []string{"127.0.0.0/24"},
				AdminListen:      Addr{IP: "127.0.0.1", Port: 9180},
			},
			Embedded: Embedded{Path: "./data"},
			Etcd: Etcd{
				Host:    []string{"http://127.0.0.1:2379"},
				Prefix:  "/apisix",
				Timeout: 30 * time.Second,
			},
		},
		HTTP: HTTP{
			ClientHeaderTimeout:      60 * time.Second,
			ClientBodyTimeout:        60 * time.Second,
			SendTimeout:              60 * time.Second,
			KeepaliveTimeout:         60 * time.Second,
			ClientMaxBodySize:        0,
			ProxyBusyBuffersSize:     1 << 20,
			LargeClientHeaderBuffers: 32 << 10,
			EnableAccessLog:          true,
			AccessLog:                "logs/access.log",
		},
		WorkerProcesses: 0,
		PluginAttr: PluginAttr{
			Prometheus: Prometheus{
				ExportAddr: Addr{IP: "127.0.0.1", Port: 9091},
				ExportURI:  "/apisix/prometheus/metrics",
				// APISIX: apisix/plugins/prometheus/exporter.lua DEFAULT_BUCKETS
				DefaultBuckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500,
					1000, 2000, 5000, 10000, 30000, 60000},
			},
		},
	}
}

// Values of Deployment.Role, Deployment.ConfigProvider and AdminKey.Role.
const (
	RoleTraditional = "traditional"
	RoleDataPlane   = "data_plane"

	ProviderEmbedded = "embedded"
	ProviderEtcd     = "etcd"
	ProviderYAML     = "yaml"

	KeyRoleAdmin  = "admin"
	KeyRoleViewer = "viewer"
)
