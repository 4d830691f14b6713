package standalone

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/model"
)

const (
	tick    = 20 * time.Millisecond
	waitMax = 5 * time.Second // generous for -race on a loaded machine
)

// recorder records apply and logf calls; safe for the poller goroutine.
type recorder struct {
	mu       sync.Mutex
	applied  []*model.Snapshot
	logs     []string
	applyErr error
}

func (r *recorder) apply(s *model.Snapshot) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.applyErr != nil {
		return r.applyErr
	}
	r.applied = append(r.applied, s)
	return nil
}

func (r *recorder) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.applied)
}

// last returns the ids of the routes of the last applied snapshot.
func (r *recorder) last() []model.ID {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.applied) == 0 {
		return nil
	}
	var ids []model.ID
	for _, rt := range r.applied[len(r.applied)-1].Routes {
		ids = append(ids, rt.ID)
	}
	return ids
}

func (r *recorder) logged(substr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.logs {
		if strings.Contains(l, substr) {
			return true
		}
	}
	return false
}

func (r *recorder) setApplyErr(err error) {
	r.mu.Lock()
	r.applyErr = err
	r.mu.Unlock()
}

// routesFile returns an apisix.yaml with one route per id.
func routesFile(ids ...string) string {
	var b strings.Builder
	b.WriteString("routes:\n")
	for _, id := range ids {
		fmt.Fprintf(&b, "  - id: %q\n    uri: /%s\n    upstream:\n      nodes:\n        \"127.0.0.1:8000\": 1\n", id, id)
	}
	b.WriteString("#END\n")
	return b.String()
}

func write(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

func startWatcher(t *testing.T, content string) (*Watcher, *recorder, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "apisix.yaml")
	write(t, path, content)
	rec := &recorder{}
	w := NewWatcher(path, tick, rec.apply, rec.logf)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return w, rec, path
}

func TestWatcherAppliesChanges(t *testing.T) {
	_, rec, path := startWatcher(t, routesFile("a"))
	assert.Equal(t, 1, rec.count(), "Start applies synchronously, once")
	assert.Equal(t, []model.ID{"a"}, rec.last())

	write(t, path, routesFile("a", "b"))
	require.Eventually(t, func() bool { return rec.count() >= 2 }, waitMax, tick/4)
	assert.Equal(t, []model.ID{"a", "b"}, rec.last())

	// A broken file is logged with the reason and not applied.
	n := rec.count()
	write(t, path, "routes:\n  - uri: /nope\n    upstream_id: u\n#END\n")
	require.Eventually(t, func() bool { return rec.logged("standalone: routes[0]: missing id") }, waitMax, tick/4)
	assert.Equal(t, n, rec.count(), "apply not called for a bad file")
	assert.Equal(t, []model.ID{"a", "b"}, rec.last())

	// A file without #END (caught half-written) is not applied either.
	write(t, path, strings.TrimSuffix(routesFile("x"), "#END\n"))
	require.Eventually(t, func() bool { return rec.logged("missing #END marker") }, waitMax, tick/4)
	assert.Equal(t, n, rec.count())

	// Fixed: applied.
	write(t, path, routesFile("c"))
	require.Eventually(t, func() bool { return rec.count() > n }, waitMax, tick/4)
	assert.Equal(t, []model.ID{"c"}, rec.last())
}

func TestWatcherSeesSameSizeEditWithinOneSecond(t *testing.T) {
	_, rec, path := startWatcher(t, routesFile("aa"))
	fi, err := os.Stat(path)
	require.NoError(t, err)

	// Same size, and the mtime put back: only the content hash differs.
	write(t, path, routesFile("bb"))
	require.NoError(t, os.Chtimes(path, fi.ModTime(), fi.ModTime()))
	require.Eventually(t, func() bool { return rec.count() >= 2 }, waitMax, tick/4)
	assert.Equal(t, []model.ID{"bb"}, rec.last())
}

func TestWatcherKeepsTableWhenApplyFails(t *testing.T) {
	_, rec, path := startWatcher(t, routesFile("a"))
	rec.setApplyErr(fmt.Errorf(`router: route "b": upstream_id "9" not found`))
	write(t, path, routesFile("b"))
	require.Eventually(t, func() bool { return rec.logged(`upstream_id "9" not found`) }, waitMax, tick/4)
	assert.Equal(t, 1, rec.count())
	assert.True(t, rec.logged("keeping the previous configuration"))

	// The same content is not retried every interval...
	rec.setApplyErr(nil)
	assert.Never(t, func() bool { return rec.count() > 1 }, 5*tick, tick)
	// ...until the file changes.
	write(t, path, routesFile("b", "c"))
	require.Eventually(t, func() bool { return rec.count() == 2 }, waitMax, tick/4)
	assert.Equal(t, []model.ID{"b", "c"}, rec.last())
}

func TestWatcherReload(t *testing.T) {
	w, rec, path := startWatcher(t, routesFile("a"))
	require.NoError(t, w.Reload(), "unchanged file: applied again")
	assert.Equal(t, 2, rec.count())

	rec.setApplyErr(fmt.Errorf("dns: no such host"))
	assert.EqualError(t, w.Reload(), "dns: no such host")
	assert.True(t, rec.logged("reload failed, keeping the previous configuration: dns: no such host"))
	rec.setApplyErr(nil)
	require.NoError(t, w.Reload(), "a retry after a failed apply")
	assert.Equal(t, 3, rec.count())

	write(t, path, "routes: [\n#END\n")
	err := w.Reload()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "standalone: apisix.yaml: yaml: line")
	assert.Equal(t, 3, rec.count())
}

func TestWatcherStartFails(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{}

	w := NewWatcher(filepath.Join(dir, "missing.yaml"), tick, rec.apply, rec.logf)
	err := w.Start()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "standalone: open ")
	w.Stop() // no poller: returns at once

	path := filepath.Join(dir, "apisix.yaml")
	write(t, path, "routes:\n  - uri: /a\n#END\n")
	w = NewWatcher(path, tick, rec.apply, rec.logf)
	assert.EqualError(t, w.Start(), "standalone: routes[0]: missing id")
	w.Stop()

	write(t, path, routesFile("a"))
	rec.setApplyErr(fmt.Errorf("router: boom"))
	w = NewWatcher(path, tick, rec.apply, rec.logf)
	assert.EqualError(t, w.Start(), "router: boom")
	w.Stop()
	assert.Zero(t, rec.count())
}

func TestWatcherFileRemoved(t *testing.T) {
	_, rec, path := startWatcher(t, routesFile("a"))
	require.NoError(t, os.Remove(path))
	require.Eventually(t, func() bool { return rec.logged("no such file") }, waitMax, tick/4)
	assert.Never(t, func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.logs) > 1
	}, 5*tick, tick, "each read error is logged once")

	write(t, path, routesFile("a", "b"))
	require.Eventually(t, func() bool { return rec.count() == 2 }, waitMax, tick/4, "back")
	assert.Equal(t, []model.ID{"a", "b"}, rec.last())
}

func TestWatcherStop(t *testing.T) {
	w, rec, path := startWatcher(t, routesFile("a"))
	stopped := make(chan struct{})
	go func() {
		w.Stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(waitMax):
		t.Fatal("Stop did not return")
	}
	select {
	case <-w.done:
	default:
		t.Fatal("the poller goroutine is still running")
	}
	w.Stop() // idempotent

	write(t, path, routesFile("b"))
	assert.Never(t, func() bool { return rec.count() > 1 }, 5*tick, tick, "no polling after Stop")
	require.NoError(t, w.Reload(), "Reload still works after Stop")
	assert.Equal(t, []model.ID{"b"}, rec.last())
}

func TestNewWatcherDefaults(t *testing.T) {
	w := NewWatcher("x", 0, func(*model.Snapshot) error { return nil }, nil)
	assert.Equal(t, DefaultInterval, w.interval)
	assert.NotNil(t, w.logf)
}
