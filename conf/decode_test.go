package conf

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireErrAt asserts that loading body fails with a message containing
// want, reported at line.
func requireErrAt(t *testing.T, body string, line int, want string) {
	t.Helper()
	_, err := loadString(t, body)
	require.Error(t, err, body)
	var e *Error
	require.True(t, errors.As(err, &e), "%T %v", err, err)
	assert.Equal(t, line, e.Line, err.Error())
	assert.Contains(t, err.Error(), want)
	assert.Regexp(t, `^conf: \S+config\.yaml:\d+: `, err.Error())
}

func TestUnknownKeys(t *testing.T) {
	// a typo in allow_admin must never leave the Admin API open silently
	requireErrAt(t, "deployment:\n  admin:\n    admin_key_required: true\n    allow_admn:\n      - 0.0.0.0/0\n",
		4, `unknown key "deployment.admin.allow_admn"`)
	requireErrAt(t, "apisix:\n  node_listen: 9080\n  enable_admn: false\n", 3, `unknown key "apisix.enable_admn"`)
	requireErrAt(t, "nginx_config:\n  http:\n    client_header_timout: 5s\n", 3, `unknown key "nginx_config.http.client_header_timout"`)
	requireErrAt(t, "nginx_config:\n  worker_proceses: 2\n", 2, `unknown key "nginx_config.worker_proceses"`)
	requireErrAt(t, "plugin_attr:\n  prometheus:\n    export_adr:\n      port: 9094\n", 3, `unknown key "plugin_attr.prometheus.export_adr"`)
	requireErrAt(t, "deployment:\n  role_traditional:\n    config_providr: etcd\n", 3, `unknown key "deployment.role_traditional.config_providr"`)
	requireErrAt(t, "deployment:\n  etcd:\n    hosts: [http://a:2379]\n", 3, `unknown key "deployment.etcd.hosts"`)
	requireErrAt(t, "deployment:\n  admin:\n    admin_listen:\n      address: 0.0.0.0\n", 4, `unknown key "deployment.admin.admin_listen.address"`)
	requireErrAt(t, "deployment:\n  admin:\n    admin_key:\n      - name: a\n        kye: x\n", 5, `unknown key "deployment.admin.admin_key[0].kye"`)
	requireErrAt(t, "apisix:\n  node_listen:\n    - ip: 127.0.0.1\n      prot: 9080\n", 4, `unknown key "apisix.node_listen[0].prot"`)
	requireErrAt(t, "apisix:\n  ssl:\n    lisen: []\n", 3, `unknown key "apisix.ssl.lisen"`)

	// top level
	requireErrAt(t, "apisix:\n  node_listen: 9080\nfoo: 1\n", 3, `unknown key "foo"`)
	// the guide's snippet pasted at the top level: say where it goes
	requireErrAt(t, "admin_key:\n  - name: admin\n", 1, `unknown key "admin_key" (did you mean deployment.admin.admin_key?)`)
	// APISIX 2.x placement
	requireErrAt(t, "apisix:\n  allow_admin:\n    - 10.0.0.0/8\n", 2, `unknown key "apisix.allow_admin" (APISIX 2.x; since 3.0 it is deployment.admin.allow_admin)`)
}

func TestSeveralErrorsAtOnce(t *testing.T) {
	_, err := loadString(t, "apisix:\n  a: 1\n  b: 2\nnginx_config:\n  c: 3\n")
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 3)
	assert.Contains(t, lines[0], `:2: unknown key "apisix.a"`)
	assert.Contains(t, lines[1], `:3: unknown key "apisix.b"`)
	assert.Contains(t, lines[2], `:5: unknown key "nginx_config.c"`)
}

func TestTypeErrors(t *testing.T) {
	requireErrAt(t, "deployment:\n  admin:\n    admin_listen:\n      ip: 127.0.0.1\n      port: abc\n", 5,
		`deployment.admin.admin_listen.port: want an integer, got "abc"`)
	requireErrAt(t, "deployment:\n  admin:\n    admin_listen:\n      port: 70000\n", 4,
		"deployment.admin.admin_listen.port: want a port from 1 to 65535, got 70000")
	requireErrAt(t, "apisix:\n  node_listen: 0\n", 2, "apisix.node_listen: want a port from 1 to 65535, got 0")
	requireErrAt(t, "apisix:\n  enable_admin: yes\n", 2, `apisix.enable_admin: want true or false, got "yes"`)
	requireErrAt(t, "apisix:\n  node_listen: {ip: 1.2.3.4}\n", 2, "apisix.node_listen: want a list, got a mapping")
	requireErrAt(t, "apisix:\n  node_listen:\n    - ip: 1.2.3.4\n", 3, "apisix.node_listen[0]: port is required")
	requireErrAt(t, "apisix:\n  node_listen:\n    - ip: 1.2.3.999\n      port: 80\n", 3, `apisix.node_listen[0].ip: want an IP address, got "1.2.3.999"`)
	requireErrAt(t, "apisix: [1, 2]\n", 1, "apisix: want a mapping, got a list")
	requireErrAt(t, "- a\n- b\n", 1, "the top level: want a mapping, got a list")
	requireErrAt(t, "deployment:\n  admin:\n    allow_admin:\n      - 127.0.0.0/24\n      - 10.0.0.0/33\n", 5,
		`deployment.admin.allow_admin[1]: want a CIDR such as 10.0.0.0/8 or an IP address, got "10.0.0.0/33"`)
	requireErrAt(t, "deployment:\n  admin:\n    allow_admin: 127.0.0.0/24\n", 3, "deployment.admin.allow_admin: want a list")
	requireErrAt(t, "deployment:\n  admin:\n    allow_admin: []\n", 3, "deployment.admin.allow_admin: empty list")
	requireErrAt(t, "deployment:\n  admin:\n    admin_key:\n      - name: a\n        key: s3cr3t\n        role: root\n", 6,
		`deployment.admin.admin_key[0].role: want admin or viewer, got "root"`)
	requireErrAt(t, "deployment:\n  role: data_plane\n", 2, "data_plane needs role_data_plane.config_provider: yaml")
	requireErrAt(t, "deployment:\n  role: control_plane\n", 2, "deployment.role: control_plane is not supported by sluice")
	requireErrAt(t, "deployment:\n  role: edge\n", 2, `deployment.role: want traditional, got "edge"`)
	requireErrAt(t, "deployment:\n  role_traditional:\n    config_provider: consul\n", 3,
		`deployment.role_traditional.config_provider: want embedded, etcd or yaml, got "consul"`)
	requireErrAt(t, "deployment:\n  etcd:\n    host:\n      - 127.0.0.1:2379\n", 4,
		`deployment.etcd.host[0]: want a URL such as http://127.0.0.1:2379, got "127.0.0.1:2379"`)
	requireErrAt(t, "deployment:\n  etcd:\n    timeout: 30s\n", 3, `deployment.etcd.timeout: want an integer, got "30s"`)
	requireErrAt(t, "deployment:\n  etcd:\n    prefix: apisix\n", 3, `deployment.etcd.prefix: want a path starting with /`)
	requireErrAt(t, "deployment:\n  admin:\n    https_admin: true\n", 3, "https_admin: HTTPS for the Admin API is not implemented")
	requireErrAt(t, "nginx_config:\n  worker_processes: 0\n", 2, `nginx_config.worker_processes: want auto or a number from 1 to 1024, got "0"`)
	requireErrAt(t, "nginx_config:\n  busy_poll: 1s\n", 2, `nginx_config.busy_poll: want at most 100ms, got "1s"`)
	requireErrAt(t, "nginx_config:\n  http:\n    send_timeout: 10 parsecs\n", 3, "nginx_config.http.send_timeout: want a duration")
	requireErrAt(t, "nginx_config:\n  http:\n    client_max_body_size: 1t\n", 3, "nginx_config.http.client_max_body_size: want a size")
	requireErrAt(t, "plugin_attr:\n  prometheus:\n    default_buckets: [10, 5]\n", 3, "default_buckets: buckets must increase: 5 after 10")
	requireErrAt(t, "plugin_attr:\n  prometheus:\n    default_buckets: [10, x]\n", 3, `default_buckets[1]: want a number, got "x"`)
	requireErrAt(t, "plugin_attr:\n  prometheus:\n    export_uri: metrics\n", 3, "export_uri: want a path starting with /")
	requireErrAt(t, "apisix:\n  node_listen: 9080\n  node_listen: 9081\n", 3, `duplicate key "apisix.node_listen" (first at line 2)`)
	requireErrAt(t, "apisix:\n  node_listen: [9080]\n  ssl:\n    listen: [9080]\n", 4, "apisix.ssl.listen[0]: 0.0.0.0:9080 clashes with apisix.node_listen[0] (0.0.0.0:9080)")
	requireErrAt(t, "apisix:\n  node_listen: [9080]\ndeployment:\n  admin:\n    admin_listen:\n      port: 9080\n", 5,
		"deployment.admin.admin_listen: 127.0.0.1:9080 clashes with apisix.node_listen[0] (0.0.0.0:9080)")
	requireErrAt(t, "apisix:\n  node_listen: 9080\n\tssl: {}\n", 2, "invalid YAML: found a tab character") // yaml.v3 reports the line before
	requireErrAt(t, "apisix:\n  node_listen: ${{SLUICE_TEST_UNSET_VAR}}\n", 2, "apisix.node_listen: environment variable SLUICE_TEST_UNSET_VAR is not set")
}

func TestSecondDocument(t *testing.T) {
	requireErrAt(t, "apisix:\n  node_listen: 9080\n---\napisix:\n  node_listen: 9081\n", 3, "a second YAML document")
}

func TestNodeListenForms(t *testing.T) {
	f := func(yaml string, want ...Addr) {
		t.Helper()
		c := mustLoad(t, "apisix:\n  node_listen: "+yaml+"\n")
		assert.Equal(t, want, c.Apisix.NodeListen, yaml)
	}
	f("9090", Addr{"0.0.0.0", 9090})
	f(`"9090"`, Addr{"0.0.0.0", 9090})
	f("[9090, 9093]", Addr{"0.0.0.0", 9090}, Addr{"0.0.0.0", 9093})
	f("\n    - 9090\n    - port: 9093\n    - ip: 127.0.0.2\n      port: 9094\n",
		Addr{"0.0.0.0", 9090}, Addr{"0.0.0.0", 9093}, Addr{"127.0.0.2", 9094})
	f("[{port: 9090, enable_http2: true}]", Addr{"0.0.0.0", 9090})
	f(`[{ip: "[::1]", port: 9090}]`, Addr{"::1", 9090})
	f(`[{ip: "::", port: 9090}]`, Addr{"::", 9090})
	f(`[{ip: localhost, port: 9090}]`, Addr{"127.0.0.1", 9090})
	f("~", Addr{"0.0.0.0", 9080}) // null keeps the default

	c := mustLoad(t, "apisix:\n  node_listen: [{port: 9090, enable_http2: true}]\n")
	require.Len(t, c.Warnings, 1)
	assert.Contains(t, c.Warnings[0], "config.yaml:2: apisix.node_listen[0].enable_http2: APISIX key not implemented by sluice, ignored")

	requireErrAt(t, "apisix:\n  node_listen: []\n", 2, "apisix.node_listen: want at least one address")
}

func TestSSL(t *testing.T) {
	c := mustLoad(t, "apisix:\n  ssl:\n    enable: true\n    listen:\n      - port: 8443\n        enable_http3: false\n    ssl_trusted_certificate: /etc/ca.pem\n")
	assert.Equal(t, []Addr{{"0.0.0.0", 8443}}, c.Apisix.SSL.Listen)
	assert.Equal(t, "/etc/ca.pem", c.Apisix.SSL.SSLTrustedCertificate)
	c = mustLoad(t, "apisix:\n  ssl:\n    enable: false\n")
	assert.Empty(t, c.Apisix.SSL.Listen, "ssl.enable: false = no HTTPS listener")
}

func TestHTTPValues(t *testing.T) {
	c := mustLoad(t, `nginx_config:
  worker_processes: 4
  busy_poll: 200us
  http:
    client_header_timeout: 500ms
    client_body_timeout: 10m
    send_timeout: 75
    keepalive_timeout: "1h 30m"
    client_max_body_size: 8M
    proxy_busy_buffers_size: 512k
    large_client_header_buffers: 8 16k
    enable_access_log: false
    access_log: "-"
`)
	h := c.HTTP
	assert.Equal(t, 500*time.Millisecond, h.ClientHeaderTimeout)
	assert.Equal(t, 10*time.Minute, h.ClientBodyTimeout)
	assert.Equal(t, 75*time.Second, h.SendTimeout)
	assert.Equal(t, 90*time.Minute, h.KeepaliveTimeout)
	assert.Equal(t, int64(8<<20), h.ClientMaxBodySize)
	assert.Equal(t, int64(512<<10), h.ProxyBusyBuffersSize)
	assert.Equal(t, 128<<10, h.LargeClientHeaderBuffers)
	assert.False(t, h.EnableAccessLog)
	assert.Equal(t, "-", h.AccessLog)
	assert.Equal(t, 4, c.WorkerProcesses)
	assert.Equal(t, 200*time.Microsecond, c.BusyPoll)

	c = mustLoad(t, "nginx_config:\n  worker_processes: auto\n  http:\n    large_client_header_buffers: 64k\n    access_log: 'off'\n")
	assert.Equal(t, int64(1<<20), c.HTTP.ProxyBusyBuffersSize, "default 1m")
	assert.Zero(t, c.WorkerProcesses)
	assert.Zero(t, c.BusyPoll, "default: sleep at once")
	assert.Equal(t, 64<<10, c.HTTP.LargeClientHeaderBuffers)
	assert.False(t, c.HTTP.EnableAccessLog)
}

func TestEtcdAndProviders(t *testing.T) {
	c := mustLoad(t, `deployment:
  role_traditional:
    config_provider: etcd
  etcd:
    host:
      - "http://10.0.0.1:2379"
      - "https://10.0.0.2:2379"
    prefix: /sluice
    timeout: 5
    user: root
    password: hunter2
`)
	e := c.Deployment.Etcd
	assert.Equal(t, "etcd", c.Deployment.ConfigProvider)
	assert.Equal(t, []string{"http://10.0.0.1:2379", "https://10.0.0.2:2379"}, e.Host)
	assert.Equal(t, "/sluice", e.Prefix)
	assert.Equal(t, 5*time.Second, e.Timeout)
	require.Len(t, c.Warnings, 2)
	assert.Contains(t, c.Warnings[0], "deployment.etcd.user: APISIX key not implemented")
	for _, w := range c.Warnings {
		assert.NotContains(t, w, "hunter2")
	}

	// APISIX standalone mode, 3.x layout
	c = mustLoad(t, "deployment:\n  role: data_plane\n  role_data_plane:\n    config_provider: yaml\n")
	assert.Equal(t, "data_plane", c.Deployment.Role)
	assert.Equal(t, "yaml", c.Deployment.ConfigProvider)
	assert.False(t, c.Apisix.EnableAdmin)
	assert.Empty(t, c.Deployment.Admin.AdminKey)
	assert.NoDirExists(t, "data")

	requireErrAt(t, "deployment:\n  role: data_plane\n  role_data_plane:\n    config_provider: control_plane\n", 4, "is not supported by sluice")
}

func TestWarnings(t *testing.T) {
	c := mustLoad(t, `apisix:
  router:
    http: radixtree_uri
  proxy_mode: http
  enable_server_tokens: false
  ssl:
    ssl_protocols: TLSv1.3
deployment:
  admin:
    admin_key:
      - name: admin
        key: `+testKey+`
    enable_admin_cors: true
nginx_config:
  error_log_level: warn
  main_configuration_snippet: |
    daemon off;
  http:
    real_ip_header: X-Forwarded-For
plugin_attr:
  log-rotate:
    interval: 3600
  prometheus:
    metric_prefix: apisix_
plugins:
  - key-auth
stream_plugins: []
discovery:
  dns:
    servers: ["127.0.0.1:8600"]
graphql:
  max_size: 1048576
etcd:
  host: ["http://127.0.0.1:2379"]
`)
	want := []string{
		":2: apisix.router: APISIX key not implemented by sluice, ignored; sluice matches routes as radixtree_host_uri",
		":4: apisix.proxy_mode:",
		":5: apisix.enable_server_tokens:",
		":7: apisix.ssl.ssl_protocols:",
		":13: deployment.admin.enable_admin_cors:",
		":15: nginx_config.error_log_level:",
		":16: nginx_config.main_configuration_snippet:",
		":19: nginx_config.http.real_ip_header:",
		":21: plugin_attr.log-rotate: plugin attributes of log-rotate are not implemented by sluice, ignored",
		":24: plugin_attr.prometheus.metric_prefix:",
		":25: plugins: APISIX key not implemented by sluice, ignored; every sluice plugin is always available",
		":27: stream_plugins:",
		":28: discovery:",
		":31: graphql:",
		":33: etcd: APISIX key not implemented by sluice, ignored; APISIX 2.x layout",
	}
	require.Len(t, c.Warnings, len(want), strings.Join(c.Warnings, "\n"))
	for i, w := range want {
		assert.Contains(t, c.Warnings[i], w)
		assert.True(t, strings.HasPrefix(c.Warnings[i], "conf: "), c.Warnings[i])
	}
}

func TestAllowAdminNormalised(t *testing.T) {
	c := mustLoad(t, "deployment:\n  admin:\n    allow_admin:\n      - 10.1.2.3\n      - 192.168.1.7/24\n      - \"::1\"\n      - fd00::/8\n")
	assert.Equal(t, []string{"10.1.2.3/32", "192.168.1.0/24", "::1/128", "fd00::/8"}, c.Deployment.Admin.AllowAdmin)
	c = mustLoad(t, "deployment:\n  admin:\n    allow_admin:\n")
	assert.Equal(t, []string{"127.0.0.0/24"}, c.Deployment.Admin.AllowAdmin, "null keeps the default")
}

func TestOpenAdminWarning(t *testing.T) {
	body := "deployment:\n  admin:\n    allow_admin:\n      - 0.0.0.0/0\n    admin_listen:\n      ip: 0.0.0.0\n      port: 9180\n"
	c := mustLoad(t, body)
	require.Len(t, c.Warnings, 1)
	assert.Contains(t, c.Warnings[0], "config.yaml:3: WARNING: deployment.admin.allow_admin has 0.0.0.0/0 and admin_listen is 0.0.0.0:9180")

	c = mustLoad(t, strings.Replace(body, "0.0.0.0/0", "::/0", 1))
	require.Len(t, c.Warnings, 1)
	assert.Contains(t, c.Warnings[0], "has ::/0")

	c = mustLoad(t, strings.Replace(body, "ip: 0.0.0.0", "ip: 127.0.0.1", 1))
	assert.Empty(t, c.Warnings, "loopback listener")

	c = mustLoad(t, "apisix:\n  enable_admin: false\n"+body)
	assert.Empty(t, c.Warnings, "no Admin API, nothing open")
}

func TestEnvSubstitution(t *testing.T) {
	t.Setenv("SLUICE_TEST_KEY", testKey)
	t.Setenv("SLUICE_TEST_PORT", "9555")
	c := mustLoad(t, `apisix:
  node_listen: ${{SLUICE_TEST_PORT}}
deployment:
  admin:
    admin_key:
      - name: admin
        key: "${{ SLUICE_TEST_KEY }}"
    admin_listen:
      port: ${{SLUICE_TEST_UNSET_PORT:=9181}}
`)
	assert.Equal(t, 9555, c.Apisix.NodeListen[0].Port)
	assert.Equal(t, testKey, c.Deployment.Admin.AdminKey[0].Key)
	assert.Equal(t, 9181, c.Deployment.Admin.AdminListen.Port)
}

func TestMergeKeysAndAliases(t *testing.T) {
	c := mustLoad(t, `apisix:
  node_listen:
    - &dp {ip: 127.0.0.1, port: 9080}
deployment:
  admin:
    admin_listen:
      <<: *dp
      port: 9181
`)
	assert.Equal(t, Addr{"127.0.0.1", 9181}, c.Deployment.Admin.AdminListen)

	// an alias bomb is refused quickly
	var b strings.Builder
	b.WriteString("discovery:\n  l0: &a0 {port: 1}\n")
	for i := 1; i < 40; i++ {
		b.WriteString("  l" + strconv.Itoa(i) + ": &a" + strconv.Itoa(i) + " {<<: [*a" + strconv.Itoa(i-1) + ", *a" + strconv.Itoa(i-1) + "]}\n")
	}
	b.WriteString("apisix:\n  node_listen:\n    - *a39\n")
	_, err := loadString(t, b.String())
	require.ErrorContains(t, err, "too many YAML aliases")
}
