package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/admin"
	"github.com/sluice-gw/sluice/admin/store"
	"github.com/sluice-gw/sluice/conf"
	"github.com/sluice-gw/sluice/router"
)

const applyTestKey = "apply-test-key-0123456789-abcdefghijklmnopq"

// applyEnv is the real Admin API (admin.Server over an embedded store in a
// temp dir) behind an httptest server that records the writes it sees.
type applyEnv struct {
	t   *testing.T
	srv *httptest.Server
	mu  sync.Mutex
	log []string // "PUT routes/r1", "DELETE upstreams/u1"
}

func newApplyEnv(t *testing.T) *applyEnv {
	t.Helper()
	cfg := conf.Default()
	cfg.Deployment.Admin.AdminKey = []conf.AdminKey{{Name: "admin", Key: applyTestKey, Role: conf.KeyRoleAdmin}}
	cfg.Deployment.Embedded.Path = t.TempDir()
	st, err := store.OpenEmbedded(cfg.Deployment.Embedded.Path, store.DefaultPrefix)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	s, err := admin.New(cfg, st, &router.Publisher{}, &router.Builder{}, nil, admin.WithVersion("test"))
	require.NoError(t, err)
	require.NoError(t, s.StartBuilder())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	e := &applyEnv{t: t}
	h := s.Handler()
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			e.mu.Lock()
			e.log = append(e.log, r.Method+" "+strings.TrimPrefix(r.URL.Path, "/apisix/admin/"))
			e.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

// writes returns and clears the recorded writes.
func (e *applyEnv) writes() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.log
	e.log = nil
	return w
}

// apply runs `sluice apply` against e with the file content (name decides
// the format).
func (e *applyEnv) apply(name, content string, extra ...string) (int, string, string) {
	e.t.Helper()
	path := filepath.Join(e.t.TempDir(), name)
	require.NoError(e.t, os.WriteFile(path, []byte(content), 0o644))
	var out, errb bytes.Buffer
	args := append([]string{"apply", "-f", path, "--admin", e.srv.URL, "--key", applyTestKey}, extra...)
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// mustApply applies and requires exit 0; it returns stdout's lines.
func (e *applyEnv) mustApply(name, content string, extra ...string) []string {
	e.t.Helper()
	code, out, errs := e.apply(name, content, extra...)
	require.Equal(e.t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errs)
	return strings.Split(strings.TrimRight(out, "\n"), "\n")
}

// admin sends a request with the key; it returns the status and the body.
func (e *applyEnv) admin(method, path, body string) (int, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+"/apisix/admin/"+path, rd)
	require.NoError(e.t, err)
	req.Header.Set("X-API-KEY", applyTestKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	var m map[string]any
	require.NoError(e.t, json.NewDecoder(resp.Body).Decode(&m))
	return resp.StatusCode, m
}

// value GETs res/id's value (nil when absent).
func (e *applyEnv) value(path string) map[string]any {
	e.t.Helper()
	code, m := e.admin(http.MethodGet, path, "")
	if code == http.StatusNotFound {
		return nil
	}
	require.Equal(e.t, 200, code, m)
	return m["value"].(map[string]any)
}

const applyFileV1 = `# managed by sluice apply
upstreams:
  - id: u1
    type: roundrobin
    nodes:
      "127.0.0.1:1980": 1
    timeout: {connect: 1, send: 2, read: 3}
routes:
  - id: r-a
    uri: /a
    upstream_id: u1
  - id: r-b
    uri: /b
    upstream:
      nodes: {"127.0.0.1:1981": 1}
#END
`

const applyFileV2 = `upstreams:
  - id: u1
    type: roundrobin
    nodes:
      "127.0.0.1:1982": 1
    timeout: {connect: 1, send: 2, read: 4}
routes:
  - id: r-a
    uri: /a
    upstream_id: u1
`

func TestApplyCreateUpdateDeleteIdempotent(t *testing.T) {
	e := newApplyEnv(t)
	// an object created by hand: never deleted
	code, _ := e.admin(http.MethodPut, "routes/manual", `{"uri":"/manual","upstream":{"nodes":{"127.0.0.1:1983":1}}}`)
	require.Equal(t, 201, code)
	e.writes()

	lines := e.mustApply("sync.yaml", applyFileV1)
	assert.Equal(t, []string{
		"+ upstreams/u1",
		"+ routes/r-a",
		"+ routes/r-b",
		"3 created, 0 updated, 0 deleted, 0 unchanged",
	}, lines)
	assert.Equal(t, []string{"PUT upstreams/u1", "PUT routes/r-a", "PUT routes/r-b"}, e.writes())
	v := e.value("routes/r-a")
	assert.Equal(t, map[string]any{"managed-by": "sluice-apply"}, v["labels"])
	assert.Equal(t, "u1", v["upstream_id"])

	// the same file again: nothing to do, nothing written
	assert.Equal(t, []string{"0 created, 0 updated, 0 deleted, 3 unchanged"}, e.mustApply("sync.yaml", applyFileV1))
	assert.Empty(t, e.writes())

	// dry run of the changed file: the plan, no write
	lines = e.mustApply("sync.yaml", applyFileV2, "--dry-run")
	assert.Equal(t, []string{
		"(dry run) ~ upstreams/u1 (nodes, timeout)",
		"(dry run) - routes/r-b",
		"(dry run) 0 created, 1 updated, 1 deleted, 1 unchanged",
	}, lines)
	assert.Empty(t, e.writes())
	assert.NotNil(t, e.value("routes/r-b"))

	lines = e.mustApply("sync.yaml", applyFileV2)
	assert.Equal(t, []string{
		"~ upstreams/u1 (nodes, timeout)",
		"- routes/r-b",
		"0 created, 1 updated, 1 deleted, 1 unchanged",
	}, lines)
	assert.Nil(t, e.value("routes/r-b"))
	assert.Equal(t, map[string]any{"127.0.0.1:1982": float64(1)}, e.value("upstreams/u1")["nodes"])
	assert.NotNil(t, e.value("routes/manual"), "an unlabelled object is never deleted")
	assert.Equal(t, []string{"0 created, 0 updated, 0 deleted, 2 unchanged"}, e.mustApply("sync.yaml", applyFileV2))

	// a file that names the hand-made object adopts it (label added)
	lines = e.mustApply("sync.yaml", applyFileV2+`  - id: manual
    uri: /manual
    upstream: {nodes: {"127.0.0.1:1983": 1}}
`)
	assert.Equal(t, []string{"~ routes/manual (labels)", "0 created, 1 updated, 0 deleted, 2 unchanged"}, lines)
}

// Creates run upstreams → services → plugin_configs → consumers → ssls →
// routes → global_rules; deletes in the reverse order. The real Admin API
// refuses a reference to a missing object and the delete of a referenced
// one, so a wrong order would fail here.
func TestApplyOrder(t *testing.T) {
	e := newApplyEnv(t)
	cert, key := applyTestCert(t)
	full := fmt.Sprintf(`{
  "routes": [{"id": "r1", "uri": "/r1", "service_id": "s1", "plugin_config_id": "pc1"},
             {"id": "r2", "uri": "/r2", "upstream_id": "u2"}],
  "global_rules": [{"id": "g1", "plugins": {"traffic-split": {"rules": [{"weighted_upstreams": [{"upstream_id": "u2", "weight": 1}]}]}}}],
  "ssls": [{"id": "t1", "cert": %q, "key": %q, "snis": ["a.test"]}],
  "consumers": [{"username": "alice", "plugins": {"key-auth": {"key": "alice-key"}}}],
  "plugin_configs": [{"id": "pc1", "plugins": {"traffic-split": {"rules": [{"weighted_upstreams": [{"upstream_id": "u2", "weight": 1}]}]}}}],
  "services": [{"id": "s1", "upstream_id": "u1"}],
  "upstreams": [{"id": "u1", "nodes": {"127.0.0.1:1980": 1}}, {"id": "u2", "nodes": {"127.0.0.1:1981": 1}}]
}`, cert, key)
	lines := e.mustApply("all.json", full)
	assert.Equal(t, []string{
		"+ upstreams/u1", "+ upstreams/u2", "+ services/s1", "+ plugin_configs/pc1", "+ consumers/alice",
		"+ ssls/t1", "+ routes/r1", "+ routes/r2", "+ global_rules/g1",
		"9 created, 0 updated, 0 deleted, 0 unchanged",
	}, lines)

	// Everything but the global rule removed: deletes routes first.
	lines = e.mustApply("none.yaml", "upstreams: []\nservices:\nplugin_configs: []\nconsumers: []\nssls: []\nroutes: []\nglobal_rules:\n  - {id: g1, plugins: {}}\n")
	assert.Equal(t, []string{
		"~ global_rules/g1 (plugins)",
		"- routes/r1", "- routes/r2", "- ssls/t1", "- consumers/alice", "- plugin_configs/pc1", "- services/s1",
		"- upstreams/u1", "- upstreams/u2",
		"0 created, 1 updated, 8 deleted, 0 unchanged",
	}, lines)
}

// Items with a masked secret (consumer credentials) or one GET leaves out
// (ssl keys) are PUT on every apply and say why.
func TestApplySecretsNotComparable(t *testing.T) {
	e := newApplyEnv(t)
	cert, key := applyTestCert(t)
	file := fmt.Sprintf(`consumers:
  - username: alice
    plugins:
      key-auth: {key: alice-key}
ssls:
  - id: t1
    cert: %q
    key: %q
    snis: [a.test]
upstreams:
  - id: u1
    nodes: {"127.0.0.1:1980": 1}
`, cert, key)
	e.mustApply("s.yaml", file)
	_, m := e.admin(http.MethodGet, "consumers/alice", "")
	assert.Contains(t, fmt.Sprint(m), "******", "the admin masks the key")
	e.writes()
	lines := e.mustApply("s.yaml", file)
	assert.Equal(t, []string{
		"~ consumers/alice (secret not comparable)",
		"~ ssls/t1 (secret not comparable)",
		"0 created, 2 updated, 0 deleted, 1 unchanged",
	}, lines)
	assert.Equal(t, []string{"PUT consumers/alice", "PUT ssls/t1"}, e.writes())

	// a real change beside the secret is listed
	lines = e.mustApply("s.yaml", strings.Replace(file, "key-auth: {key: alice-key}", "key-auth: {key: alice-key}\n    desc: Alice", 1))
	assert.Equal(t, "~ consumers/alice (desc; secret not comparable)", lines[0])
}

// Global rules have no labels: never deleted, and --dry-run says so.
func TestApplyGlobalRulesNeverDeleted(t *testing.T) {
	e := newApplyEnv(t)
	e.mustApply("g.yaml", "global_rules:\n  - {id: g1, plugins: {}}\n")
	lines := e.mustApply("g.yaml", "global_rules: []\n", "--dry-run")
	assert.Equal(t, []string{
		"(dry run) = global_rules/g1 is not in the file but is kept: global rules have no labels, apply never deletes them",
		"(dry run) 0 created, 0 updated, 0 deleted, 0 unchanged",
	}, lines)
	assert.Equal(t, []string{"0 created, 0 updated, 0 deleted, 0 unchanged"}, e.mustApply("g.yaml", "global_rules: []\n"))
	assert.NotNil(t, e.value("global_rules/g1"))
}

// The first Admin API error stops apply: status and error_msg, what was
// applied, exit 1.
func TestApplyStopsAtFirstError(t *testing.T) {
	e := newApplyEnv(t)
	code, out, errs := e.apply("bad.yaml", `upstreams:
  - {id: u1, nodes: {"127.0.0.1:1980": 1}}
routes:
  - {id: r1, uri: /r1, upstream_id: u1}
  - {id: r2, uri: /r2, upstream_id: nope}
  - {id: r3, uri: /r3, upstream_id: u1}
`)
	assert.Equal(t, 1, code)
	assert.Equal(t, "+ upstreams/u1\n+ routes/r1\nstopped at the first error: 2 created, 0 updated, 0 deleted; 2 of 4 changes not made\n", out)
	assert.Contains(t, errs, "PUT /apisix/admin/routes/r2: 400 failed to fetch upstream info by upstream id [nope], response code: 404")
	assert.Nil(t, e.value("routes/r3"))
	assert.NotNil(t, e.value("routes/r1"))

	// a schema error names the field
	code, _, errs = e.apply("bad.yaml", "routes:\n  - {id: r9, uir: /x}\n")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "400 invalid configuration: additional properties forbidden, found uir")

	// a wrong key
	path := filepath.Join(t.TempDir(), "f.yaml")
	require.NoError(t, os.WriteFile(path, []byte("routes: []\n"), 0o644))
	var o, eb bytes.Buffer
	code = run([]string{"apply", "-f", path, "--admin", e.srv.URL, "--key", "wrong-key-0123456789-0123456789-0123456789"}, &o, &eb)
	assert.Equal(t, 1, code)
	assert.Contains(t, eb.String(), "GET /apisix/admin/upstreams: 401 failed to check token (wrong apikey)")
}

func TestApplyParseFile(t *testing.T) {
	ok := func(name, content string) *applyFile {
		t.Helper()
		f, err := parseApplyFile(name, []byte(content))
		require.NoError(t, err)
		return f
	}
	bad := func(name, content, want string) {
		t.Helper()
		_, err := parseApplyFile(name, []byte(content))
		require.Error(t, err)
		assert.Contains(t, err.Error(), want)
	}

	// YAML, JSON by extension, JSON sniffed, #END
	f := ok("x.yaml", "routes:\n  - id: 1\n    uri: /\n    labels: {team: ai}\n#END\n")
	require.Len(t, f.items["routes"], 1)
	assert.Equal(t, "1", f.items["routes"][0].id, "an integer id is a string id")
	assert.Equal(t, "1", f.items["routes"][0].value["id"])
	assert.Equal(t, map[string]any{"team": "ai", "managed-by": "sluice-apply"}, f.items["routes"][0].value["labels"])
	f = ok("x.json", `{"upstreams":[{"id":"u","nodes":{"a:1":1},"create_time":1,"update_time":2}]}`+"\n#END\n")
	assert.Equal(t, map[string]any{"id": "u", "nodes": map[string]any{"a:1": json.Number("1")},
		"labels": map[string]any{"managed-by": "sluice-apply"}}, f.items["upstreams"][0].value, "timestamps are ignored")
	f = ok("sync.conf", `{"consumers":[{"username":"bob"}]}`)
	assert.Equal(t, "bob", f.items["consumers"][0].id)
	f = ok("sync", "global_rules:\n  - {id: g, plugins: {}}\nroutes:\n")
	assert.NotContains(t, f.items["global_rules"][0].value, "labels", "global rules have no labels")
	f = ok("a.yaml", "upstreams:\n  - &b {id: u, nodes: {\"a:1\": 1}, retries: 1.5}\n  - {<<: *b, id: v}\n")
	assert.Equal(t, "v", f.items["upstreams"][1].id)
	assert.Equal(t, json.Number("1.5"), f.items["upstreams"][1].value["retries"])

	bad("x.yaml", "", "names no resources")
	bad("x.yaml", "# nothing\n#END\n", "names no resources")
	bad("x.yaml", "route:\n  - {id: r}\n", `unknown top-level key "route"`)
	bad("x.json", `{"routes":[],"stream_routes":[]}`, `unknown top-level key "stream_routes"`)
	bad("x.yaml", "routes:\n  - {uri: /}\n", `routes[0] (line 2): "id" is required`)
	bad("x.yaml", "routes:\n  - {id: a}\n  - {id: a}\n", "routes[1] (line 3): routes/a is also routes[0]")
	bad("x.yaml", "routes:\n  - {id: ../x}\n", `"id" "../x" does not match`)
	bad("x.yaml", "routes:\n  - {id: -1}\n", `"id" -1 is not a positive integer`)
	bad("x.yaml", "routes:\n  - {id: [a]}\n", `"id" must be a string, got a list`)
	bad("x.yaml", "consumers:\n  - {id: a}\n", `consumers[0] (line 2): "username" is required`)
	bad("x.yaml", "consumers:\n  - {username: a/b}\n", `"username" "a/b" does not match`)
	bad("x.yaml", "routes: {id: r}\n", "routes: want a list, got a mapping")
	bad("x.yaml", "routes:\n  - just a string\n", "routes[0] (line 2): want a mapping, got a string")
	bad("x.yaml", "- a\n", "want a mapping of resource lists")
	bad("x.yaml", "routes:\n  - {id: r, labels: {managed-by: me}}\n", "labels.managed-by is reserved")
	bad("x.yaml", "routes:\n  - {id: r, labels: [a]}\n", `"labels" must be a mapping`)
	bad("x.yaml", "consumers:\n  - {username: a, plugins: {key-auth: {key: \"******\"}}}\n", `plugins.key-auth.key is "******"`)
	bad("x.yaml", "routes:\n  - {id: r, uri: /, uri: /b}\n", `duplicate key "uri"`)
	bad("x.yaml", "routes:\n  - {id: r, labels: {1: a}}\n", "map key 1 (int) is not a string")
	bad("x.yaml", "routes: []\n---\nroutes: []\n", "more than one YAML document")
	bad("x.json", `{"routes":[]} {}`, "data after the top-level value")
	bad("x.json", `{"routes":[}`, "json:")
}

func TestApplyDiff(t *testing.T) {
	dec := func(s string) map[string]any {
		d := json.NewDecoder(strings.NewReader(s))
		d.UseNumber()
		var m map[string]any
		require.NoError(t, d.Decode(&m))
		return m
	}
	f, s := applyDiff("upstreams", dec(`{"id":"u","nodes":{"a:1":1},"retries":1.0}`),
		dec(`{"id":"u","nodes":{"a:1":1},"retries":1,"create_time":1,"update_time":2}`))
	assert.Empty(t, f, "numbers compare by value, timestamps are ignored")
	assert.False(t, s)
	f, _ = applyDiff("routes", dec(`{"id":"r","uri":"/","desc":null}`), dec(`{"id":"r","uri":"/x","name":"n"}`))
	assert.Equal(t, []string{"name", "uri"}, f)
	f, s = applyDiff("consumers", dec(`{"username":"a","plugins":{"key-auth":{"key":"k"}}}`),
		dec(`{"username":"a","plugins":{"key-auth":{"key":"******"}}}`))
	assert.Empty(t, f)
	assert.True(t, s)
	f, _ = applyDiff("routes", dec(`{"id":"r","methods":["GET","POST"]}`), dec(`{"id":"r","methods":["POST","GET"]}`))
	assert.Equal(t, []string{"methods"}, f)
}

func TestApplyUsageAndTarget(t *testing.T) {
	var out, errb bytes.Buffer
	assert.Equal(t, 2, run([]string{"apply"}, &out, &errb))
	assert.Contains(t, errb.String(), "-f FILE is required")
	assert.Equal(t, 2, run([]string{"apply", "-f", "x.yaml", "extra"}, &out, &errb))
	assert.Equal(t, 2, run([]string{"apply", "--nope"}, &out, &errb))
	assert.Equal(t, 1, run([]string{"apply", "-f", filepath.Join(t.TempDir(), "missing.yaml")}, &out, &errb))
	out.Reset()
	assert.Equal(t, 0, run([]string{"help"}, &out, &errb))
	assert.Contains(t, out.String(), "apply -f FILE [--dry-run]")

	// admin address and key from the config file (conf.Parse: nothing
	// written); a config without a key falls back to the generated key file
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfgFile := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(fmt.Sprintf(`deployment:
  admin:
    admin_listen: {ip: 0.0.0.0, port: 9280}
  embedded:
    path: %s
`, data)), 0o644))
	base, key, err := applyTarget(cfgFile, "", "")
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:9280", base)
	assert.Empty(t, key)
	_, err = os.Stat(data)
	assert.True(t, os.IsNotExist(err), "nothing generated")
	require.NoError(t, os.MkdirAll(data, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(data, "admin_key"), []byte(applyTestKey+"\n"), 0o600))
	_, key, err = applyTarget(cfgFile, "", "")
	require.NoError(t, err)
	assert.Equal(t, applyTestKey, key)

	require.NoError(t, os.WriteFile(cfgFile, []byte(`deployment:
  admin:
    admin_key:
      - {name: v, key: viewer-key-0123456789-0123456789-0123, role: viewer}
      - {name: a, key: config-key-0123456789-0123456789-0123, role: admin}
`), 0o644))
	base, key, err = applyTarget(cfgFile, "", "")
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:9180", base)
	assert.Equal(t, "config-key-0123456789-0123456789-0123", key, "the admin key, not the viewer's")
	base, key, err = applyTarget(cfgFile, "10.0.0.1:9999/", "flag-key")
	require.NoError(t, err)
	assert.Equal(t, "http://10.0.0.1:9999", base)
	assert.Equal(t, "flag-key", key)
	_, _, err = applyTarget(filepath.Join(dir, "missing.yaml"), "", "")
	assert.Error(t, err, "an explicit -c must exist")

	// the key from the environment
	t.Setenv(applyKeyEnv, "env-key")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-API-KEY") != "env-key" {
			w.WriteHeader(401)
			io.WriteString(w, `{"error_msg":"failed to check token"}`)
			return
		}
		io.WriteString(w, `{"total":0,"list":{}}`)
	}))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "f.yaml")
	require.NoError(t, os.WriteFile(path, []byte("routes: []\n"), 0o644))
	out.Reset()
	errb.Reset()
	assert.Equal(t, 0, run([]string{"apply", "-f", path, "--admin", srv.URL}, &out, &errb), errb.String())
	assert.Equal(t, "0 created, 0 updated, 0 deleted, 0 unchanged\n", out.String())
}

// applyTestCert returns a self-signed certificate and its key (PEM).
func applyTestCert(t *testing.T) (string, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "a.test"},
		DNSNames:     []string{"a.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	kd, err := x509.MarshalECPrivateKey(k)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}))
}
