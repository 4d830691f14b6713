package admin

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/sluice-gw/sluice/router"
)

// cachingResolver sits between router.Builder and the real resolver. Every
// write builds a whole table, and router.Build resolves every host-name
// node on each build; this cache answers from the last lookup until
// expire is called (the DNS refresh tick), and when a fresh lookup fails it
// keeps serving the last good answer (logged), so a DNS outage neither
// blocks Admin API writes nor empties a routing table. A name never
// resolved still fails, and the write naming it is refused.
type cachingResolver struct {
	next router.Resolver
	log  *slog.Logger

	mu    sync.Mutex
	cache map[string]*dnsEntry
}

type dnsEntry struct {
	addrs []netip.Addr
	stale bool // expire was called since the lookup
	used  bool // looked up since the last expire
}

func newCachingResolver(next router.Resolver, log *slog.Logger) *cachingResolver {
	if next == nil {
		next = net.DefaultResolver
	}
	return &cachingResolver{next: next, log: log, cache: map[string]*dnsEntry{}}
}

// LookupNetIP implements router.Resolver.
func (c *cachingResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	key := network + "/" + host
	c.mu.Lock()
	e := c.cache[key]
	if e != nil && !e.stale {
		e.used = true
		c.mu.Unlock()
		return e.addrs, nil
	}
	c.mu.Unlock()
	addrs, err := c.next.LookupNetIP(ctx, network, host)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if e != nil {
			c.log.Warn("admin: DNS lookup failed; keeping the last answer", "host", host, "err", err)
			e.used = true
			return e.addrs, nil
		}
		return nil, err
	}
	c.cache[key] = &dnsEntry{addrs: addrs, used: true}
	return addrs, nil
}

// expire makes the next lookup of every name ask the real resolver again,
// and forgets names not looked up since the previous expire.
func (c *cachingResolver) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.cache {
		if !e.used {
			delete(c.cache, k)
			continue
		}
		e.stale, e.used = true, false
	}
}
