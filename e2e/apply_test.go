package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runApply runs `sluice apply` in a fresh directory with args and env
// (KEY=VALUE); it returns the exit code, stdout and stderr.
func runApply(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(sluiceBin, append([]string{"apply"}, args...)...)
	cmd.Dir = t.TempDir() // no conf/config.yaml here unless -c names one
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "sluice apply: %v", err)
		code = ee.ExitCode()
	}
	return code, out.String(), errb.String()
}

func applyLines(out string) []string {
	return strings.Split(strings.TrimRight(out, "\n"), "\n")
}

// sluice apply against a running gateway (embedded store, Admin API): the
// file's routes serve traffic; --dry-run changes nothing; a changed file
// updates, deletes what it no longer names, leaves hand-made objects alone;
// a second apply changes nothing.
func TestApplyDeclarativeSync(t *testing.T) {
	a, b, c := startUpstream(t, "a", nil), startUpstream(t, "b", nil), startUpstream(t, "c", nil)
	dir, port, adminPort := newAdminGatewayDir(t, e2eAdminKey)
	g := startAdminGateway(t, dir, port, adminPort)
	cfg := filepath.Join(dir, "conf", "config.yaml")

	v1 := fmt.Sprintf(`upstreams:
  - id: shared
    type: roundrobin
    nodes:
      %q: 1
routes:
  - id: one
    uri: /one
    upstream_id: shared
  - id: two
    uri: /two
    upstream:
      nodes: {%q: 1}
#END
`, a.addr(), b.addr())
	// one route removed, the upstream's node changed
	v2 := fmt.Sprintf(`upstreams:
  - id: shared
    type: roundrobin
    nodes:
      %q: 1
routes:
  - id: one
    uri: /one
    upstream_id: shared
`, c.addr())
	fileDir := t.TempDir()
	f1, f2 := filepath.Join(fileDir, "v1.yaml"), filepath.Join(fileDir, "v2.yaml")
	writeFile(t, f1, v1)
	writeFile(t, f2, v2)

	// admin address and key from the gateway's config file
	code, out, errs := runApply(t, nil, "-f", f1, "-c", cfg)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errs)
	assert.Equal(t, []string{"+ upstreams/shared", "+ routes/one", "+ routes/two",
		"3 created, 0 updated, 0 deleted, 0 unchanged"}, applyLines(out))
	resp, body := dataGet(t, g, "GET", "/one", "")
	require.Equal(t, 200, resp.StatusCode, body)
	assert.Equal(t, "a", resp.Header.Get("X-Upstream-Name"))
	resp, body = dataGet(t, g, "GET", "/two", "")
	require.Equal(t, 200, resp.StatusCode, body)
	assert.Equal(t, "b", resp.Header.Get("X-Upstream-Name"))
	code, r := adminDo(t, g, "GET", "/apisix/admin/routes/one", e2eAdminKey, "")
	require.Equal(t, 200, code)
	assert.Equal(t, map[string]any{"managed-by": "sluice-apply"}, r["value"].(map[string]any)["labels"])

	// an object created by hand (curl PUT, no label)
	code, r = adminDo(t, g, "PUT", "/apisix/admin/routes/by-hand", e2eAdminKey,
		fmt.Sprintf(`{"uri":"/by-hand","upstream":{"nodes":{%q:1}}}`, c.addr()))
	require.Equal(t, 201, code, r)

	// --dry-run of the changed file (address and key from flag and env):
	// the plan, and nothing changes
	adminURL := "http://127.0.0.1:" + fmt.Sprint(adminPort)
	code, out, errs = runApply(t, []string{"SLUICE_ADMIN_KEY=" + e2eAdminKey}, "-f", f2, "--dry-run", "--admin", adminURL)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errs)
	assert.Equal(t, []string{"(dry run) ~ upstreams/shared (nodes)", "(dry run) - routes/two",
		"(dry run) 0 created, 1 updated, 1 deleted, 1 unchanged"}, applyLines(out))
	resp, _ = dataGet(t, g, "GET", "/two", "")
	assert.Equal(t, 200, resp.StatusCode, "dry run deleted nothing")
	resp, _ = dataGet(t, g, "GET", "/one", "")
	assert.Equal(t, "a", resp.Header.Get("X-Upstream-Name"), "dry run changed nothing")

	// apply the changed file
	code, out, errs = runApply(t, nil, "-f", f2, "-c", cfg)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errs)
	assert.Equal(t, []string{"~ upstreams/shared (nodes)", "- routes/two",
		"0 created, 1 updated, 1 deleted, 1 unchanged"}, applyLines(out))
	resp, _ = dataGet(t, g, "GET", "/two", "")
	assert.Equal(t, 404, resp.StatusCode, "the removed route is gone")
	resp, body = dataGet(t, g, "GET", "/one", "")
	require.Equal(t, 200, resp.StatusCode, body)
	assert.Equal(t, "c", resp.Header.Get("X-Upstream-Name"), "the node change is live")
	resp, body = dataGet(t, g, "GET", "/by-hand", "")
	assert.Equal(t, 200, resp.StatusCode, "the hand-made route is never deleted: %s", body)
	code, _ = adminDo(t, g, "GET", "/apisix/admin/routes/by-hand", e2eAdminKey, "")
	assert.Equal(t, 200, code)

	// a second apply of the same file: no change
	hits := c.count()
	code, out, errs = runApply(t, nil, "-f", f2, "-c", cfg)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errs)
	assert.Equal(t, []string{"0 created, 0 updated, 0 deleted, 2 unchanged"}, applyLines(out))
	resp, _ = dataGet(t, g, "GET", "/one", "")
	assert.Equal(t, "c", resp.Header.Get("X-Upstream-Name"))
	assert.Equal(t, hits+1, c.count())

	// an Admin API error stops apply with its status and error_msg
	bad := filepath.Join(fileDir, "bad.yaml")
	writeFile(t, bad, v2+"  - {id: three, uri: /three, upstream_id: missing}\n")
	code, out, errs = runApply(t, nil, "-f", bad, "-c", cfg)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "PUT /apisix/admin/routes/three: 400 failed to fetch upstream info by upstream id [missing]")
	assert.Contains(t, out, "stopped at the first error: 0 created, 0 updated, 0 deleted; 1 of 1 changes not made")
}
