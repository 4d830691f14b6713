package main

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/model"
	"github.com/sluice-gw/sluice/router"
)

// fakeDNS answers with a settable address.
type fakeDNS struct {
	mu   sync.Mutex
	addr string
}

func (f *fakeDNS) set(a string) { f.mu.Lock(); f.addr = a; f.mu.Unlock() }
func (f *fakeDNS) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return []netip.Addr{netip.MustParseAddr(f.addr)}, nil
}

// TestDNSReresolved: a host-name node is resolved again periodically, and
// the new address is published.
func TestDNSReresolved(t *testing.T) {
	dns := &fakeDNS{addr: "127.0.0.10"}
	pub := &router.Publisher{}
	rb := &rebuilder{b: &router.Builder{Resolver: dns}, pub: pub, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	s := model.NewSnapshot()
	s.Routes = []*model.Route{{ID: "r", URI: "/x", Upstream: &model.Upstream{Nodes: model.Nodes{{Host: "api.example.test", Port: 443, Weight: 1}}}}}
	_, err := rb.apply(s)
	require.NoError(t, err)
	addr := func() string { return pub.Load().Upstreams[0].Nodes[0].Addrs[0].Addr().String() }
	assert.Equal(t, "127.0.0.10", addr())

	dns.set("127.0.0.11")
	stop := rb.reresolveEvery(10 * time.Millisecond)
	defer stop()
	deadline := time.Now().Add(5 * time.Second)
	for addr() != "127.0.0.11" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	assert.Equal(t, "127.0.0.11", addr())
	assert.True(t, s.HasHostNames())
	s.Routes[0].Upstream.Nodes[0].Host = "127.0.0.1"
	assert.False(t, s.HasHostNames())
}

func TestMaxBuffered(t *testing.T) {
	assert.Equal(t, 1<<20, maxBuffered(1<<20))
	assert.Equal(t, -1, maxBuffered(0), "0 = no cap")
}
