package admin

import (
	"context"
	"errors"
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
// resolved still fails, and the write naming it is refused. A lookup of
// such a name that timed out is remembered as failed until expire too:
// every write rebuilds the whole table, and without that each one would
// wait out a lookup timeout (5 s) per stored name in a DNS outage.
type cachingResolver struct {
	next router.Resolver
	log  *slog.Logger

	mu    sync.Mutex
	cache map[string]*dnsEntry
}

type dnsEntry struct {
	addrs []netip.Addr
	err   error // the lookup timed out (addrs nil): answered until expire
	stale bool  // expire was called since the lookup
	used  bool  // looked up since the last expire
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
		return e.addrs, e.err
	}
	c.mu.Unlock()
	addrs, err := c.next.LookupNetIP(ctx, network, host)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if e != nil && e.addrs != nil {
			c.log.Warn("admin: DNS lookup failed; keeping the last answer", "host", host, "err", err)
			e.used = true
			if timedOut(err) {
				e.stale = false // not asked again before the next refresh either
			}
			return e.addrs, nil
		}
		if timedOut(err) {
			c.cache[key] = &dnsEntry{err: err, used: true}
		}
		return nil, err
	}
	c.cache[key] = &dnsEntry{addrs: addrs, used: true}
	return addrs, nil
}

// timedOut reports whether a failed lookup ran out of time (no answer),
// rather than being told the name does not exist, which is quick.
func timedOut(err error) bool {
	var de *net.DNSError
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &de) && de.IsTimeout
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
