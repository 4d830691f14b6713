package conf

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Validate checks c as Load does, for a Config built in code (tests, other
// packages) rather than read from a file: ports, IPs, CIDRs, roles, the
// config provider, etcd URLs, admin keys (none may be empty, an APISIX
// example key or shorter than 32 characters), limits and listen-address
// clashes. Its errors name the key path but no line.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path string, err error) {
		errs = append(errs, fmt.Errorf("conf: %s: %w", path, err))
	}
	addr := func(path string, a Addr) {
		if _, err := parseIP(a.IP); err != nil {
			bad(path+".ip", err)
		}
		if err := checkPort(a.Port); err != nil {
			bad(path+".port", err)
		}
	}

	if len(c.Apisix.NodeListen) == 0 {
		bad("apisix.node_listen", errors.New("want at least one address"))
	}
	for i, a := range c.Apisix.NodeListen {
		addr(fmt.Sprintf("apisix.node_listen[%d]", i), a)
	}
	for i, a := range c.Apisix.SSL.Listen {
		addr(fmt.Sprintf("apisix.ssl.listen[%d]", i), a)
	}

	d := &c.Deployment
	switch d.Role {
	case RoleTraditional:
	case RoleDataPlane:
		if d.ConfigProvider != ProviderYAML || c.Apisix.EnableAdmin {
			bad("deployment.role", errors.New("data_plane is supported only as APISIX standalone mode: config_provider yaml, no Admin API"))
		}
	default:
		bad("deployment.role", fmt.Errorf("want traditional, got %q", d.Role))
	}
	switch d.ConfigProvider {
	case ProviderEmbedded, ProviderEtcd, ProviderYAML:
	default:
		bad("deployment.role_traditional.config_provider", fmt.Errorf("want embedded, etcd or yaml, got %q", d.ConfigProvider))
	}

	ad := &d.Admin
	if c.Apisix.EnableAdmin {
		addr("deployment.admin.admin_listen", ad.AdminListen)
		if len(ad.AllowAdmin) == 0 {
			bad("deployment.admin.allow_admin", errors.New("want at least one CIDR (0.0.0.0/0 and ::/0 allow everyone)"))
		}
	}
	for i, s := range ad.AllowAdmin {
		if _, err := parseCIDR(s); err != nil {
			bad(fmt.Sprintf("deployment.admin.allow_admin[%d]", i), err)
		}
	}
	seen := make(map[string]int, len(ad.AdminKey))
	for i, k := range ad.AdminKey {
		path := fmt.Sprintf("deployment.admin.admin_key[%d]", i)
		if k.Key == "" {
			bad(path, errors.New("key is empty"))
		} else if err := checkKey(k.Key); err != nil {
			bad(path, err)
		}
		if k.Role != KeyRoleAdmin && k.Role != KeyRoleViewer {
			bad(path+".role", fmt.Errorf("want admin or viewer, got %q", k.Role))
		}
		if j, ok := seen[k.Key]; ok && k.Key != "" {
			bad(path, fmt.Errorf("key is the same as admin_key[%d]'s", j))
		}
		seen[k.Key] = i
	}

	if strings.TrimSpace(d.Embedded.Path) == "" {
		bad("deployment.embedded.path", errors.New("want a directory"))
	}
	if len(d.Etcd.Host) == 0 {
		bad("deployment.etcd.host", errors.New("want at least one URL"))
	}
	for i, h := range d.Etcd.Host {
		if err := checkEtcdHost(h); err != nil {
			bad(fmt.Sprintf("deployment.etcd.host[%d]", i), err)
		}
	}
	if !strings.HasPrefix(d.Etcd.Prefix, "/") {
		bad("deployment.etcd.prefix", fmt.Errorf("want a path starting with /, got %q", d.Etcd.Prefix))
	}
	if d.Etcd.Timeout < 1e9 {
		bad("deployment.etcd.timeout", fmt.Errorf("want at least 1 second, got %v", d.Etcd.Timeout))
	}

	h := &c.HTTP
	for _, t := range []struct {
		name string
		v    int64
	}{
		{"client_header_timeout", int64(h.ClientHeaderTimeout)},
		{"client_body_timeout", int64(h.ClientBodyTimeout)},
		{"send_timeout", int64(h.SendTimeout)},
		{"keepalive_timeout", int64(h.KeepaliveTimeout)},
		{"client_max_body_size", h.ClientMaxBodySize},
		{"proxy_busy_buffers_size", h.ProxyBusyBuffersSize},
	} {
		if t.v < 0 {
			bad("nginx_config.http."+t.name, errors.New("want a value of 0 or more"))
		}
	}
	if h.LargeClientHeaderBuffers < 1 || h.LargeClientHeaderBuffers > maxHeadBuffers {
		bad("nginx_config.http.large_client_header_buffers", fmt.Errorf("want 1 byte to 1g, got %d", h.LargeClientHeaderBuffers))
	}
	if h.EnableAccessLog && h.AccessLog == "" {
		bad("nginx_config.http.access_log", errors.New("want a file name or - for stdout"))
	}
	if c.WorkerProcesses < 0 || c.WorkerProcesses > maxWorkerProcesses {
		bad("nginx_config.worker_processes", fmt.Errorf("want auto (0) or 1 to %d, got %d", maxWorkerProcesses, c.WorkerProcesses))
	}
	if c.BusyPoll < 0 || c.BusyPoll > maxBusyPoll {
		bad("nginx_config.busy_poll", fmt.Errorf("want 0 to %v, got %v", maxBusyPoll, c.BusyPoll))
	}

	p := &c.PluginAttr.Prometheus
	addr("plugin_attr.prometheus.export_addr", p.ExportAddr)
	if !strings.HasPrefix(p.ExportURI, "/") {
		bad("plugin_attr.prometheus.export_uri", fmt.Errorf("want a path starting with /, got %q", p.ExportURI))
	}
	if err := checkBuckets(p.DefaultBuckets); err != nil {
		bad("plugin_attr.prometheus.default_buckets", err)
	}

	if len(errs) == 0 {
		ls := c.listeners()
		if i, j, ok := clash(ls); ok {
			bad(ls[j].path, fmt.Errorf("%s clashes with %s (%s)", ls[j].hostPort(), ls[i].path, ls[i].hostPort()))
		}
	}
	return errors.Join(errs...)
}

// listener is one address sluice binds, for the clash check.
type listener struct {
	path string
	line int
	a    Addr
}

func (l listener) hostPort() string {
	if strings.Contains(l.a.IP, ":") {
		return fmt.Sprintf("[%s]:%d", l.a.IP, l.a.Port)
	}
	return fmt.Sprintf("%s:%d", l.a.IP, l.a.Port)
}

// listeners lists the addresses c binds (the Admin API only when enabled).
func (c *Config) listeners() []listener {
	var ls []listener
	for i, a := range c.Apisix.NodeListen {
		ls = append(ls, listener{path: fmt.Sprintf("apisix.node_listen[%d]", i), a: a})
	}
	for i, a := range c.Apisix.SSL.Listen {
		ls = append(ls, listener{path: fmt.Sprintf("apisix.ssl.listen[%d]", i), a: a})
	}
	if c.Apisix.EnableAdmin {
		ls = append(ls, listener{path: "deployment.admin.admin_listen", a: c.Deployment.Admin.AdminListen})
	}
	return append(ls, listener{path: "plugin_attr.prometheus.export_addr", a: c.PluginAttr.Prometheus.ExportAddr})
}

// clash finds two listeners that cannot both bind: the same port on the
// same IP, or on a wildcard of the same family ("::" is dual-stack on Linux,
// so it clashes with every address).
func clash(ls []listener) (i, j int, ok bool) {
	for j = range ls {
		for i = 0; i < j; i++ {
			if ls[i].a.Port != ls[j].a.Port {
				continue
			}
			a, err1 := netip.ParseAddr(ls[i].a.IP)
			b, err2 := netip.ParseAddr(ls[j].a.IP)
			if err1 != nil || err2 != nil {
				continue
			}
			a, b = a.Unmap(), b.Unmap()
			switch {
			case a == b,
				a.Is4() == b.Is4() && (a.IsUnspecified() || b.IsUnspecified()),
				a == netip.IPv6Unspecified() || b == netip.IPv6Unspecified():
				return i, j, true
			}
		}
	}
	return 0, 0, false
}
