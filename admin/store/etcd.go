package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Etcd is the store for a cluster of gateways sharing config: etcd v3,
// APISIX's key layout ("<prefix>/routes/1", JSON values), so sluice and
// APISIX tooling read the same keys.
//
// Every call is bounded by the timeout given to OpenEtcd (and by its
// context); failures to reach etcd (refused, timed out, no leader) wrap
// ErrUnavailable. Writes return after etcd acknowledged them (committed by
// a quorum).
type Etcd struct {
	cli     *clientv3.Client
	prefix  string
	timeout time.Duration
	opt     options
	log     *slog.Logger

	// lastRev is the newest etcd revision this process has seen in any
	// response (List, Get, Put, Delete, watch events). Watch starts after
	// it, so List then Watch misses nothing.
	lastRev atomic.Int64

	// clusterID is etcd's cluster id from the first response; a different
	// one later means another cluster now answers at the endpoints.
	clusterID atomic.Uint64
	// reset is closed (and replaced) when etcd's data was replaced under
	// us: its revision went backwards or its cluster id changed. Every
	// watch then resyncs, since a watch from our old revision would wait
	// for revisions that now mean something else.
	resetMu sync.Mutex
	reset   chan struct{}

	closed    atomic.Bool
	stop      chan struct{}
	closeOnce sync.Once
	wmu       sync.Mutex // orders wg.Add in Watch against Close
	wg        sync.WaitGroup
}

var _ Store = (*Etcd)(nil)

// DefaultEtcdTimeout is deployment.etcd.timeout's default (APISIX: 30 s).
const DefaultEtcdTimeout = 30 * time.Second

// OpenEtcd connects to etcd at endpoints (URLs such as
// "http://127.0.0.1:2379"; default that one) with key prefix prefix
// (default "/apisix"). timeout bounds each call (default 30 s).
//
// Like APISIX, it refuses to start without etcd: if no endpoint answers a
// read of the prefix within timeout (or before ctx ends), it returns an
// error wrapping ErrUnavailable. Once open, an etcd outage only makes
// calls fail with ErrUnavailable; the client reconnects by itself and
// watches resume (with EventResync if changes could have been missed).
func OpenEtcd(ctx context.Context, endpoints []string, prefix string, timeout time.Duration, opts ...Option) (*Etcd, error) {
	if len(endpoints) == 0 {
		endpoints = []string{"http://127.0.0.1:2379"}
	}
	if timeout <= 0 {
		timeout = DefaultEtcdTimeout
	}
	o := buildOptions(opts)
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            endpoints,
		DialTimeout:          timeout,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		Logger:               zap.NewNop(), // errors come back to the caller; slog reports the rest
		// Reconnect soon after etcd comes back, however long it was down
		// (gRPC's default backoff grows to 2 minutes).
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  250 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   2 * time.Second,
			},
			MinConnectTimeout: min(timeout, 5*time.Second),
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("store: etcd %s: %w", strings.Join(endpoints, ","), err)
	}
	e := &Etcd{
		cli:     cli,
		prefix:  normPrefix(prefix),
		timeout: timeout,
		opt:     o,
		log:     o.logger,
		stop:    make(chan struct{}),
		reset:   make(chan struct{}),
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := cli.Get(cctx, e.prefix+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("%w: etcd %s did not answer within %s: %w", ErrUnavailable, strings.Join(endpoints, ","), timeout, err)
	}
	e.clusterID.Store(resp.Header.GetClusterId())
	e.observe(resp.Header.GetRevision())
	return e, nil
}

// Client returns the underlying etcd client (tests, tooling).
func (e *Etcd) Client() *clientv3.Client { return e.cli }

// Prefix returns the key prefix.
func (e *Etcd) Prefix() string { return e.prefix }

// Revision returns the newest etcd revision this process has seen.
func (e *Etcd) Revision() int64 { return e.lastRev.Load() }

func (e *Etcd) observe(rev int64) {
	for {
		cur := e.lastRev.Load()
		if rev <= cur || e.lastRev.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// call runs fn with the per-call timeout, checks the response header it
// returns and classifies its error.
func (e *Etcd) call(ctx context.Context, what string, fn func(context.Context) (*etcdserverpb.ResponseHeader, error)) error {
	if e.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	before := e.lastRev.Load()
	cctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	h, err := fn(cctx)
	if err == nil {
		e.observeResponse(before, h)
		return nil
	}
	if e.closed.Load() {
		return ErrClosed
	}
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled) {
		// The caller gave up; not etcd's fault.
		return fmt.Errorf("store: etcd %s: %w", what, ctx.Err())
	}
	if isUnavailable(err) {
		return fmt.Errorf("%w: etcd %s: %w", ErrUnavailable, what, err)
	}
	return fmt.Errorf("store: etcd %s: %w", what, err)
}

// observeResponse records the revision in a unary (linearizable)
// response. Such a response reflects every change committed before the
// call began, so a revision below what this process had seen by then
// means etcd's data went backwards (restored from a backup, or wiped).
func (e *Etcd) observeResponse(before int64, h *etcdserverpb.ResponseHeader) {
	if h == nil {
		return
	}
	if e.checkCluster(h) {
		return
	}
	if h.Revision < before {
		e.replaced(h.Revision, fmt.Sprintf("etcd revision went back from %d to %d", before, h.Revision))
		return
	}
	e.observe(h.Revision)
}

// checkCluster reports (and handles) a change of etcd cluster id.
func (e *Etcd) checkCluster(h *etcdserverpb.ResponseHeader) bool {
	id := h.GetClusterId()
	old := e.clusterID.Load()
	if id == 0 || id == old {
		return false
	}
	if old == 0 {
		e.clusterID.CompareAndSwap(0, id)
		return false
	}
	if !e.clusterID.CompareAndSwap(old, id) {
		return false // someone else is handling it
	}
	e.replaced(h.Revision, fmt.Sprintf("etcd cluster id changed from %x to %x", old, id))
	return true
}

// replaced handles etcd data replaced under us: forget the old revision
// and make every watch resync.
func (e *Etcd) replaced(rev int64, why string) {
	e.log.Error("store: etcd data was replaced; resyncing every watcher", "reason", why)
	e.lastRev.Store(rev)
	e.resetMu.Lock()
	close(e.reset)
	e.reset = make(chan struct{})
	e.resetMu.Unlock()
}

func (e *Etcd) resetSignal() <-chan struct{} {
	e.resetMu.Lock()
	defer e.resetMu.Unlock()
	return e.reset
}

// isUnavailable tells an error reaching etcd (or etcd unable to serve:
// no leader, timeouts, overload, out of space) from a request etcd
// rejected on its merits (too large, permission, bad argument).
func isUnavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	code := codes.Unknown
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code = ee.Code()
	} else if s, ok := status.FromError(err); ok {
		code = s.Code()
	}
	switch code {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange,
		codes.PermissionDenied, codes.Unauthenticated, codes.AlreadyExists,
		codes.NotFound, codes.Unimplemented:
		return false
	}
	return true
}

// Get returns the item at key.
func (e *Etcd) Get(ctx context.Context, key string) (KV, bool, error) {
	if key == "" {
		return KV{}, false, errors.New("store: empty key")
	}
	var resp *clientv3.GetResponse
	err := e.call(ctx, "get "+key, func(c context.Context) (_ *etcdserverpb.ResponseHeader, err error) {
		if resp, err = e.cli.Get(c, key); err != nil {
			return nil, err
		}
		return resp.Header, nil
	})
	if err != nil {
		return KV{}, false, err
	}
	if len(resp.Kvs) == 0 {
		return KV{}, false, nil
	}
	kv := resp.Kvs[0]
	return KV{Key: string(kv.Key), Value: nonNil(kv.Value), Revision: kv.ModRevision}, true, nil
}

// List returns the items whose key starts with prefix, sorted by key.
func (e *Etcd) List(ctx context.Context, prefix string) ([]KV, error) {
	var resp *clientv3.GetResponse
	err := e.call(ctx, "list "+prefix, func(c context.Context) (_ *etcdserverpb.ResponseHeader, err error) {
		if resp, err = e.cli.Get(c, prefix, clientv3.WithPrefix(),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)); err != nil {
			return nil, err
		}
		return resp.Header, nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]KV, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out = append(out, KV{Key: string(kv.Key), Value: nonNil(kv.Value), Revision: kv.ModRevision})
	}
	return out, nil
}

// Put stores value at key; it returns after etcd committed the write.
// created comes from the same transaction (the key had no create
// revision before it).
func (e *Etcd) Put(ctx context.Context, key string, value []byte) (bool, error) {
	if key == "" {
		return false, errors.New("store: empty key")
	}
	v := string(value)
	var resp *clientv3.TxnResponse
	err := e.call(ctx, "put "+key, func(c context.Context) (_ *etcdserverpb.ResponseHeader, err error) {
		resp, err = e.cli.Txn(c).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, v)).
			Else(clientv3.OpPut(key, v)).
			Commit()
		if err != nil {
			return nil, err
		}
		return resp.Header, nil
	})
	if err != nil {
		return false, err
	}
	return resp.Succeeded, nil
}

// Delete removes key; existed reports whether it was there.
func (e *Etcd) Delete(ctx context.Context, key string) (bool, error) {
	if key == "" {
		return false, errors.New("store: empty key")
	}
	var resp *clientv3.DeleteResponse
	err := e.call(ctx, "delete "+key, func(c context.Context) (_ *etcdserverpb.ResponseHeader, err error) {
		if resp, err = e.cli.Delete(c, key); err != nil {
			return nil, err
		}
		return resp.Header, nil
	})
	if err != nil {
		return false, err
	}
	return resp.Deleted > 0, nil
}

// Watch delivers every change under the prefix after the newest revision
// this process has seen (so List, then Watch, misses nothing), from this
// gateway and every other, in order, until ctx ends or the store closes.
//
// It is an etcd watch (a stream, never polling). When etcd cannot replay
// the gap — its history was compacted, the watch was cancelled (lost
// leader), etcd's data was replaced (its revision went backwards or its
// cluster id changed, seen on any response or progress notification), or
// the watch ended for any other reason — the watcher first learns
// etcd's current revision R (retrying while etcd is down), then gets
// EventResync and changes after R. A List made after EventResync is at R
// or later, so nothing is lost; changes between R and that List may arrive
// again (apply them in order and the result is the same). A short outage
// that etcd's history covers needs no resync: the client reconnects and
// delivers the missed changes.
func (e *Etcd) Watch(ctx context.Context) <-chan Event {
	w := newWatcher(e.opt.watchQueue)
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if e.closed.Load() {
		close(w.out)
		return w.out
	}
	rev := e.lastRev.Load() + 1
	wctx, cancel := context.WithCancel(ctx)
	w.start(wctx, e.stop, cancel)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer cancel()
		e.watchLoop(wctx, w, rev)
	}()
	return w.out
}

func (e *Etcd) watchLoop(ctx context.Context, w *watcher, rev int64) {
	key := e.prefix + "/"
	for {
		reset := e.resetSignal()
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		// Progress notifications (every few minutes, from etcd) carry the
		// cluster id: an idle watcher notices a replaced etcd too.
		wch := e.cli.Watch(wctx, key, clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithProgressNotify())
		why := e.pump(wch, reset, w, &rev)
		cancel()
		if ctx.Err() != nil || e.closed.Load() {
			return
		}
		cur, ok := e.currentRevision(ctx)
		if !ok {
			return
		}
		e.log.Warn("store: etcd watch interrupted; watcher must resync", "prefix", key, "reason", why.Error(), "resume_after", cur)
		w.push(Event{Type: EventResync})
		rev = cur + 1
	}
}

// pump forwards one etcd watch's events until it ends; it returns why.
func (e *Etcd) pump(wch clientv3.WatchChan, reset <-chan struct{}, w *watcher, rev *int64) error {
	for {
		select {
		case <-reset:
			return errors.New("etcd data was replaced")
		case resp, ok := <-wch:
			if !ok {
				return errors.New("watch channel closed")
			}
			if err := resp.Err(); err != nil {
				if resp.CompactRevision != 0 {
					return fmt.Errorf("%w (history compacted up to revision %d, wanted %d)", err, resp.CompactRevision, *rev)
				}
				return err
			}
			if e.checkCluster(&resp.Header) {
				return errors.New("etcd cluster id changed")
			}
			if resp.IsProgressNotify() && resp.Header.Revision < *rev-1 {
				// The member serving the watch is behind what it already
				// delivered: its data went backwards.
				e.replaced(resp.Header.Revision, fmt.Sprintf("etcd revision %d is behind the watch at %d", resp.Header.Revision, *rev))
				return errors.New("etcd data was replaced")
			}
			for _, ev := range resp.Events {
				w.push(convertEvent(ev))
				*rev = ev.Kv.ModRevision + 1
				e.observe(ev.Kv.ModRevision)
			}
		}
	}
}

// currentRevision asks etcd for its revision, retrying with backoff while
// etcd is unreachable; ok is false when ctx ended or the store closed.
func (e *Etcd) currentRevision(ctx context.Context) (int64, bool) {
	backoff := 100 * time.Millisecond
	for {
		var resp *clientv3.GetResponse
		err := e.call(ctx, "revision", func(c context.Context) (_ *etcdserverpb.ResponseHeader, err error) {
			if resp, err = e.cli.Get(c, e.prefix+"/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
				return nil, err
			}
			return resp.Header, nil
		})
		if err == nil {
			return resp.Header.GetRevision(), true
		}
		select {
		case <-ctx.Done():
			return 0, false
		case <-e.stop:
			return 0, false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func convertEvent(ev *clientv3.Event) Event {
	kv := KV{Key: string(ev.Kv.Key), Revision: ev.Kv.ModRevision}
	if ev.Type == mvccpb.DELETE {
		return Event{Type: EventDelete, KV: kv}
	}
	kv.Value = nonNil(ev.Kv.Value)
	return Event{Type: EventPut, KV: kv}
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Close ends the watchers and closes the client.
func (e *Etcd) Close() error {
	var err error
	e.closeOnce.Do(func() {
		e.wmu.Lock()
		e.closed.Store(true)
		close(e.stop)
		e.wmu.Unlock()
		err = e.cli.Close()
		e.wg.Wait()
		if errors.Is(err, context.Canceled) {
			err = nil
		}
	})
	return err
}
