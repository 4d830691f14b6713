package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/admin/store/etcdtest"
)

func openEtcdTest(t *testing.T, endpoint string, timeout time.Duration) *Etcd {
	t.Helper()
	e, err := OpenEtcd(context.Background(), []string{endpoint}, "/apisix", timeout, WithLogger(discardLogger()))
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	return e
}

func TestEtcdCRUD(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	endpoint, _, _ := etcdtest.Start(t)
	e := openEtcdTest(t, endpoint, 5*time.Second)
	assert.Equal(t, "/apisix", e.Prefix())

	_, ok, err := e.Get(ctx, "/apisix/routes/1")
	require.NoError(t, err)
	assert.False(t, ok)

	created, err := e.Put(ctx, "/apisix/routes/2", []byte(`{"uri": "/two"}`))
	require.NoError(t, err)
	assert.True(t, created)
	created, err = e.Put(ctx, "/apisix/routes/1", []byte(`{"uri":"/one"}`))
	require.NoError(t, err)
	assert.True(t, created)
	created, err = e.Put(ctx, "/apisix/routes/1", []byte(`{"uri":"/uno"}`))
	require.NoError(t, err)
	assert.False(t, created)
	_, err = e.Put(ctx, "/apisix/upstreams/1", []byte("raw \x00 bytes"))
	require.NoError(t, err)
	// Outside the prefix: not listed under it.
	_, err = e.Put(ctx, "/apisix2/routes/1", []byte(`{}`))
	require.NoError(t, err)

	kv, ok, err := e.Get(ctx, "/apisix/routes/1")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, `{"uri":"/uno"}`, string(kv.Value))
	assert.Equal(t, e.Revision()-2, kv.Revision)

	list, err := e.List(ctx, "/apisix/routes/")
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "/apisix/routes/1", list[0].Key)
	assert.Equal(t, "/apisix/routes/2", list[1].Key)
	assert.Equal(t, `{"uri": "/two"}`, string(list[1].Value))
	list, err = e.List(ctx, "/apisix/")
	require.NoError(t, err)
	assert.Len(t, list, 3)
	kv, ok, err = e.Get(ctx, "/apisix/upstreams/1")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "raw \x00 bytes", string(kv.Value))

	existed, err := e.Delete(ctx, "/apisix/routes/1")
	require.NoError(t, err)
	assert.True(t, existed)
	existed, err = e.Delete(ctx, "/apisix/routes/1")
	require.NoError(t, err)
	assert.False(t, existed)
	_, ok, err = e.Get(ctx, "/apisix/routes/1")
	require.NoError(t, err)
	assert.False(t, ok)

	require.NoError(t, e.Close())
	_, err = e.Put(ctx, "/apisix/routes/1", []byte(`{}`))
	assert.ErrorIs(t, err, ErrClosed)
	expectClosed(t, e.Watch(ctx))
}

func TestEtcdWatchAcrossClients(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	endpoint, _, _ := etcdtest.Start(t)
	a := openEtcdTest(t, endpoint, 5*time.Second)
	b := openEtcdTest(t, endpoint, 5*time.Second)

	_, err := a.Put(ctx, "/apisix/routes/old", []byte(`{}`))
	require.NoError(t, err)
	// b lists, then watches: it sees what came after its List only.
	list, err := b.List(ctx, "/apisix/")
	require.NoError(t, err)
	require.Len(t, list, 1)
	wctx, cancel := context.WithCancel(ctx)
	ch := b.Watch(wctx)

	start := time.Now()
	_, err = a.Put(ctx, "/apisix/routes/1", []byte(`{"uri":"/x"}`))
	require.NoError(t, err)
	ev := recvWithin(t, ch, time.Second)
	assert.Less(t, time.Since(start), time.Second)
	assert.Equal(t, EventPut, ev.Type)
	assert.Equal(t, "/apisix/routes/1", ev.KV.Key)
	assert.Equal(t, `{"uri":"/x"}`, string(ev.KV.Value))
	assert.Equal(t, a.Revision(), ev.KV.Revision)

	_, err = a.Delete(ctx, "/apisix/routes/1")
	require.NoError(t, err)
	ev = recvWithin(t, ch, time.Second)
	assert.Equal(t, EventDelete, ev.Type)
	assert.Equal(t, "/apisix/routes/1", ev.KV.Key)

	// b's own writes, too; keys outside the prefix are not delivered.
	_, err = b.Put(ctx, "/apisix2/x", []byte(`{}`))
	require.NoError(t, err)
	_, err = b.Put(ctx, "/apisix/upstreams/9", []byte(`{}`))
	require.NoError(t, err)
	ev = recvWithin(t, ch, time.Second)
	assert.Equal(t, "/apisix/upstreams/9", ev.KV.Key)

	cancel()
	expectClosed(t, ch)
}

func TestEtcdCompactionResync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	endpoint, _, _ := etcdtest.Start(t)
	a := openEtcdTest(t, endpoint, 5*time.Second)
	b := openEtcdTest(t, endpoint, 5*time.Second) // b has seen the revision at open
	for i := range 5 {
		_, err := a.Put(ctx, fmt.Sprintf("/apisix/routes/%d", i), []byte(`{}`))
		require.NoError(t, err)
	}
	_, err := a.Client().Compact(ctx, a.Revision())
	require.NoError(t, err)

	// b's watch starts at a compacted revision: it must say so.
	ch := b.Watch(ctx)
	ev := recvWithin(t, ch, 5*time.Second)
	require.Equal(t, EventResync, ev.Type)
	// and go on with what comes next.
	_, err = a.Put(ctx, "/apisix/routes/after", []byte(`{}`))
	require.NoError(t, err)
	ev = recvWithin(t, ch, 5*time.Second)
	assert.Equal(t, EventPut, ev.Type)
	assert.Equal(t, "/apisix/routes/after", ev.KV.Key)
}

func TestEtcdOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := etcdtest.StartServer(t)
	const timeout = 2 * time.Second
	e := openEtcdTest(t, srv.Endpoint(), timeout)
	other := openEtcdTest(t, srv.Endpoint(), timeout)
	ch := e.Watch(ctx)
	_, err := e.Put(ctx, "/apisix/routes/1", []byte(`{"v":1}`))
	require.NoError(t, err)
	assert.Equal(t, "/apisix/routes/1", recvWithin(t, ch, time.Second).KV.Key)

	srv.Stop()
	start := time.Now()
	_, err = e.Put(ctx, "/apisix/routes/2", []byte(`{}`))
	took := time.Since(start)
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrUnavailable), "want ErrUnavailable, got %v", err)
	assert.Less(t, took, timeout+time.Second, "the call is bounded by the timeout")
	// Every other call too (concurrently: each waits out the timeout).
	errs := make(chan error, 3)
	go func() { _, _, err := e.Get(ctx, "/apisix/routes/1"); errs <- err }()
	go func() { _, err := e.List(ctx, "/apisix/"); errs <- err }()
	go func() { _, err := e.Delete(ctx, "/apisix/routes/1"); errs <- err }()
	for range 3 {
		assert.ErrorIs(t, <-errs, ErrUnavailable)
	}
	// A caller's own, shorter deadline is honoured too.
	sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	start = time.Now()
	_, err = e.Put(sctx, "/apisix/routes/2", []byte(`{}`))
	cancel()
	assert.ErrorIs(t, err, ErrUnavailable)
	assert.Less(t, time.Since(start), time.Second)

	srv.Restart()
	// The client reconnects by itself.
	require.Eventually(t, func() bool {
		_, err := e.Put(ctx, "/apisix/routes/3", []byte(`{"v":3}`))
		return err == nil
	}, 20*time.Second, 100*time.Millisecond, "Put works again after etcd came back")
	_, err = other.Put(ctx, "/apisix/routes/4", []byte(`{"v":4}`))
	require.NoError(t, err)

	// The watch resumed: it delivers the changes (possibly after a resync).
	seen := map[string]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for !(seen["/apisix/routes/3"] && seen["/apisix/routes/4"]) && time.Now().Before(deadline) {
		ev := recvWithin(t, ch, 10*time.Second)
		if ev.Type == EventResync {
			t.Log("watch resynced after the outage")
			continue
		}
		seen[ev.KV.Key] = true
	}
	assert.True(t, seen["/apisix/routes/3"] && seen["/apisix/routes/4"], "changes after the outage reach the watcher: %v", seen)
	kv, ok, err := e.Get(ctx, "/apisix/routes/1")
	require.NoError(t, err)
	require.True(t, ok, "data survives the etcd restart")
	assert.Equal(t, `{"v":1}`, string(kv.Value))
}

func TestOpenEtcdUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	start := time.Now()
	e, err := OpenEtcd(context.Background(), []string{"http://127.0.0.1:" + strconv.Itoa(port)}, "", time.Second, WithLogger(discardLogger()))
	took := time.Since(start)
	if e != nil {
		e.Close()
	}
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrUnavailable)
	assert.Contains(t, err.Error(), strconv.Itoa(port))
	assert.Less(t, took, 3*time.Second)
	assert.GreaterOrEqual(t, took, 900*time.Millisecond, "waits up to the timeout")
}

func recvWithin(t *testing.T, ch <-chan Event, d time.Duration) Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		require.True(t, ok, "watch channel closed")
		return ev
	case <-time.After(d):
		t.Fatalf("no event within %s", d)
	}
	return Event{}
}

// etcd wiped (or restored from an older backup) under a running gateway:
// the revision goes backwards, so a watch from the old revision would
// wait in silence. The store notices and resyncs its watchers.
func TestEtcdDataReplaced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := etcdtest.StartServer(t)
	e := openEtcdTest(t, srv.Endpoint(), 2*time.Second)
	for i := range 20 {
		_, err := e.Put(ctx, fmt.Sprintf("/apisix/routes/%d", i), []byte(`{}`))
		require.NoError(t, err)
	}
	ch := e.Watch(ctx)
	srv.Stop()
	require.NoError(t, os.RemoveAll(srv.DataDir()))
	srv.Restart()
	require.Eventually(t, func() bool {
		_, err := e.Put(ctx, "/apisix/routes/x", []byte(`{}`))
		return err == nil
	}, 20*time.Second, 100*time.Millisecond)
	ev := recvWithin(t, ch, 5*time.Second)
	require.Equal(t, EventResync, ev.Type)
	assert.Less(t, e.Revision(), int64(10), "the store follows the new revision")
	_, err := e.Put(ctx, "/apisix/routes/y", []byte(`{}`))
	require.NoError(t, err)
	ev = recvWithin(t, ch, 5*time.Second)
	assert.Equal(t, EventPut, ev.Type)
	assert.Equal(t, "/apisix/routes/y", ev.KV.Key)
}
