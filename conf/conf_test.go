package conf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testKey is a valid 43-character key (what sluice keygen prints).
const testKey = "Zm9vYmFyYmF6cXV4cXV1eHF1dXpxdXV6cXV1enF1dXo"

// inTemp makes a fresh temporary directory the working directory, so the
// default ./data lands there and never in the repository.
func inTemp(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Chdir(dir)
	return dir
}

// writeConf writes body as config.yaml in a fresh working directory and
// returns its path.
func writeConf(t *testing.T, body string) string {
	t.Helper()
	dir := inTemp(t)
	path := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

func loadString(t *testing.T, body string) (*Config, error) {
	t.Helper()
	return Load(writeConf(t, body))
}

func mustLoad(t *testing.T, body string) *Config {
	t.Helper()
	c, err := loadString(t, body)
	require.NoError(t, err)
	return c
}

func TestDefaults(t *testing.T) {
	c := Default()
	assert.Equal(t, []Addr{{"0.0.0.0", 9080}}, c.Apisix.NodeListen)
	assert.Equal(t, []Addr{{"0.0.0.0", 9443}}, c.Apisix.SSL.Listen)
	assert.True(t, c.Apisix.EnableAdmin)
	assert.Equal(t, "traditional", c.Deployment.Role)
	assert.Equal(t, "embedded", c.Deployment.ConfigProvider)
	assert.True(t, c.Deployment.Admin.AdminKeyRequired)
	assert.Empty(t, c.Deployment.Admin.AdminKey)
	assert.Equal(t, []string{"127.0.0.0/24"}, c.Deployment.Admin.AllowAdmin)
	assert.Equal(t, Addr{"127.0.0.1", 9180}, c.Deployment.Admin.AdminListen)
	assert.Equal(t, "./data", c.Deployment.Embedded.Path)
	assert.Equal(t, []string{"http://127.0.0.1:2379"}, c.Deployment.Etcd.Host)
	assert.Equal(t, "/apisix", c.Deployment.Etcd.Prefix)
	assert.Equal(t, 30*time.Second, c.Deployment.Etcd.Timeout)
	assert.Equal(t, 60*time.Second, c.HTTP.ClientHeaderTimeout)
	assert.Equal(t, 60*time.Second, c.HTTP.ClientBodyTimeout)
	assert.Equal(t, 60*time.Second, c.HTTP.SendTimeout)
	assert.Equal(t, 60*time.Second, c.HTTP.KeepaliveTimeout)
	assert.Zero(t, c.HTTP.ClientMaxBodySize)
	assert.Equal(t, 32<<10, c.HTTP.LargeClientHeaderBuffers)
	assert.True(t, c.HTTP.EnableAccessLog)
	assert.Equal(t, "logs/access.log", c.HTTP.AccessLog)
	assert.Zero(t, c.WorkerProcesses)
	assert.Equal(t, Addr{"127.0.0.1", 9091}, c.PluginAttr.Prometheus.ExportAddr)
	assert.Equal(t, "/apisix/prometheus/metrics", c.PluginAttr.Prometheus.ExportURI)
	assert.Equal(t, []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000},
		c.PluginAttr.Prometheus.DefaultBuckets)
	assert.Empty(t, c.Warnings)
	assert.NoError(t, c.Validate())

	// Default returns a fresh value every time.
	c.Apisix.NodeListen[0].Port = 1
	assert.Equal(t, 9080, Default().Apisix.NodeListen[0].Port)
}

func TestLoadNoFile(t *testing.T) {
	dir := inTemp(t)
	c, err := Load("")
	require.NoError(t, err)
	assert.Equal(t, "", c.Path)
	assert.Equal(t, []Addr{{"0.0.0.0", 9080}}, c.Apisix.NodeListen)
	ad := c.Deployment.Admin
	require.Len(t, ad.AdminKey, 1)
	assert.Equal(t, AdminKey{Name: "admin", Key: ad.AdminKey[0].Key, Role: "admin"}, ad.AdminKey[0])
	assert.Len(t, ad.AdminKey[0].Key, 43)
	assert.True(t, ad.KeyGenerated)
	assert.True(t, ad.KeyCreated)
	assert.Equal(t, filepath.Join("data", "admin_key"), ad.KeyFile)
	assert.FileExists(t, filepath.Join(dir, "data", "admin_key"))
	assert.Empty(t, c.Warnings)
}

func TestEmptyFile(t *testing.T) {
	for _, body := range []string{"", "\n# only a comment\n", "---\n", "~\n"} {
		c, err := loadString(t, body)
		require.NoError(t, err, "%q", body)
		assert.Equal(t, 9080, c.Apisix.NodeListen[0].Port)
		assert.True(t, c.Deployment.Admin.KeyGenerated)
	}
}

// The block in SPEC §3, with a real key.
const specBlock = `apisix:
  node_listen: 9080            # int, or list of {ip, port}
  enable_admin: true
deployment:
  role: traditional
  role_traditional:
    config_provider: embedded  # embedded | etcd | yaml (standalone, read-only admin)
  admin:
    admin_key_required: true
    admin_key:
      - name: admin
        key: ` + testKey + `
        role: admin            # admin: read/write; viewer: GET only
    allow_admin:               # CIDRs allowed to reach the Admin API; absent = 127.0.0.0/24
      - 127.0.0.0/24
    admin_listen:
      ip: 127.0.0.1
      port: 9180
plugin_attr:
  prometheus:
    export_addr: {ip: 127.0.0.1, port: 9091}
    export_uri: /apisix/prometheus/metrics
`

func TestSpecBlock(t *testing.T) {
	c := mustLoad(t, specBlock)
	assert.Empty(t, c.Warnings)
	assert.Equal(t, []AdminKey{{"admin", testKey, "admin"}}, c.Deployment.Admin.AdminKey)
	assert.False(t, c.Deployment.Admin.KeyGenerated)
	assert.Empty(t, c.Deployment.Admin.KeyFile)
	assert.NoDirExists(t, "data", "a configured key writes nothing")
	assert.Equal(t, Addr{"127.0.0.1", 9091}, c.PluginAttr.Prometheus.ExportAddr)
}

// The AI guide's snippet, placed under deployment.admin where APISIX 3
// reads it, with enable_admin there too (SPEC §3 alias).
func TestGuideSnippet(t *testing.T) {
	body := `deployment:
  admin:
    enable_admin: true
    admin_key_required: true
    admin_key:
    - name: admin
      key: ` + testKey + `
      role: admin
    allow_admin:
    - 127.0.0.0/24
    - 0.0.0.0/0
`
	c := mustLoad(t, body)
	assert.True(t, c.Apisix.EnableAdmin)
	assert.Equal(t, testKey, c.Deployment.Admin.AdminKey[0].Key)
	assert.Equal(t, []string{"127.0.0.0/24", "0.0.0.0/0"}, c.Deployment.Admin.AllowAdmin)
	assert.Empty(t, c.Warnings, "0.0.0.0/0 with a loopback admin_listen is not worth a warning")

	c = mustLoad(t, strings.Replace(body, "enable_admin: true", "enable_admin: false", 1))
	assert.False(t, c.Apisix.EnableAdmin)
}

func TestEnableAdminAliasConflict(t *testing.T) {
	_, err := loadString(t, "apisix:\n  enable_admin: true\ndeployment:\n  admin:\n    enable_admin: false\n")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "config.yaml:5: deployment.admin.enable_admin: false contradicts apisix.enable_admin: true at line 2")

	c := mustLoad(t, "apisix:\n  enable_admin: false\ndeployment:\n  admin:\n    enable_admin: false\n")
	assert.False(t, c.Apisix.EnableAdmin)
}

// benchConf fills the bench's template as bench/peers/sluice.sh does.
func benchConf(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/work/shared/bench/peers", name))
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("bench template %s not present", name)
	}
	require.NoError(t, err)
	return strings.NewReplacer("@PORT@", "18080", "@SSL_PORT@", "18443", "@ADMIN_PORT@", "18180",
		"@ADMIN_KEY@", "-"+testKey[1:], "@METRICS_PORT@", "18091").Replace(string(b))
}

func TestBenchTemplates(t *testing.T) {
	c := mustLoad(t, benchConf(t, "sluice-config.yaml.tmpl"))
	assert.Empty(t, c.Warnings)
	assert.Equal(t, []Addr{{"127.0.0.1", 18080}}, c.Apisix.NodeListen)
	assert.Equal(t, []Addr{{"127.0.0.1", 18443}}, c.Apisix.SSL.Listen)
	assert.Equal(t, Addr{"127.0.0.1", 18180}, c.Deployment.Admin.AdminListen)
	assert.Equal(t, Addr{"127.0.0.1", 18091}, c.PluginAttr.Prometheus.ExportAddr)
	assert.Equal(t, "-"+testKey[1:], c.Deployment.Admin.AdminKey[0].Key, "a key starting with - stays a string")
	assert.Equal(t, "embedded", c.Deployment.ConfigProvider)

	c = mustLoad(t, benchConf(t, "sluice-standalone.yaml.tmpl"))
	assert.Empty(t, c.Warnings)
	assert.Equal(t, "yaml", c.Deployment.ConfigProvider)
	assert.False(t, c.Apisix.EnableAdmin)
	assert.NoDirExists(t, "data")
}

func TestExampleConfig(t *testing.T) {
	abs, err := filepath.Abs("config.yaml")
	require.NoError(t, err)
	dir := inTemp(t)
	c, err := Load(abs)
	require.NoError(t, err)
	assert.Empty(t, c.Warnings)
	assert.True(t, c.Deployment.Admin.KeyGenerated, "the example leaves key empty")
	assert.FileExists(t, filepath.Join(dir, "data", "admin_key"))
	assert.Equal(t, []Addr{{"0.0.0.0", 9080}}, c.Apisix.NodeListen)
	assert.Equal(t, []Addr{{"127.0.0.1", 9443}}, c.Apisix.SSL.Listen)
	assert.Equal(t, Addr{"127.0.0.1", 9180}, c.Deployment.Admin.AdminListen)
	assert.Equal(t, 32<<10, c.HTTP.LargeClientHeaderBuffers)

	// and "sluice validate" (Parse) writes nothing
	t.Chdir(t.TempDir())
	c, err = Parse(abs)
	require.NoError(t, err)
	assert.Equal(t, []AdminKey{{Name: "admin", Role: "admin"}}, c.Deployment.Admin.AdminKey)
	assert.NoDirExists(t, "data")
}

func TestExampleStandaloneFile(t *testing.T) {
	b, err := os.ReadFile("apisix.yaml")
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(string(b), "\n#END\n"), "APISIX standalone files end with #END")
	assert.Contains(t, string(b), "/chat/completions")
	assert.Contains(t, string(b), "127.0.0.1:8000")
}

func TestParseDoesNotWrite(t *testing.T) {
	path := writeConf(t, "apisix:\n  node_listen: 9081\n")
	c, err := Parse(path)
	require.NoError(t, err)
	assert.Equal(t, 9081, c.Apisix.NodeListen[0].Port)
	assert.NoDirExists(t, filepath.Join(filepath.Dir(path), "data"))
}

func TestMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "conf: "), err.Error())
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestValidate(t *testing.T) {
	c := Default()
	c.Deployment.Admin.AdminKey = []AdminKey{{"a", "s3cr3t-value", "admin"}, {"b", "", "boss"}}
	c.Apisix.NodeListen = []Addr{{"nope", 0}}
	c.Deployment.Etcd.Host = []string{"127.0.0.1:2379"}
	c.PluginAttr.Prometheus.DefaultBuckets = []float64{5, 1}
	err := c.Validate()
	require.Error(t, err)
	for _, want := range []string{
		"admin_key[0]: key is shorter than 32",
		"admin_key[1]: key is empty",
		`admin_key[1].role: want admin or viewer, got "boss"`,
		`apisix.node_listen[0].ip: want an IP address, got "nope"`,
		"apisix.node_listen[0].port: want a port from 1 to 65535, got 0",
		"deployment.etcd.host[0]",
		"default_buckets: buckets must increase",
	} {
		assert.Contains(t, err.Error(), want)
	}
	assert.NotContains(t, err.Error(), "s3cr3t")

	c = Default()
	c.PluginAttr.Prometheus.ExportAddr.Port = 9080
	require.ErrorContains(t, c.Validate(), "plugin_attr.prometheus.export_addr: 127.0.0.1:9080 clashes with apisix.node_listen[0] (0.0.0.0:9080)")
}
