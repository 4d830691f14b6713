package main

import (
	"log/slog"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/model"
	"github.com/sluice-gw/sluice/router"
)

// dnsRefresh is how often host-name nodes are resolved again (Go's
// resolver does not expose record TTLs, so a fixed period stands in).
const dnsRefresh = 30 * time.Second

// rebuilder owns the Builder (one goroutine at a time: it is not safe for
// concurrent use) and republishes the last snapshot when DNS answers may
// have changed.
type rebuilder struct {
	mu   sync.Mutex
	b    *router.Builder
	pub  *router.Publisher
	log  *slog.Logger
	last *model.Snapshot
	// unresolved: names left out since the first load (tolerated until
	// they resolve)
	unresolved map[string]bool
}

// apply builds s and publishes it.
func (r *rebuilder) apply(s *model.Snapshot) (*router.Table, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// The first load tolerates names that do not resolve (a DNS outage
	// must not keep the gateway down), and later builds tolerate those
	// same names until they resolve; any other name that fails keeps the
	// current table (a blip on the DNS refresh must not drop nodes, and a
	// reload must not bring a name that does not resolve).
	t, skipped, err := r.b.BuildTolerant(s, func(host string) bool { return r.last == nil || r.unresolved[host] })
	if err != nil {
		return nil, err
	}
	r.unresolved = nil
	if len(skipped) > 0 {
		r.log.Warn("host names do not resolve; their nodes are left out until they do", "hosts", skipped)
		r.unresolved = make(map[string]bool, len(skipped))
		for _, h := range skipped {
			r.unresolved[h] = true
		}
	}
	r.pub.Store(t)
	r.last = s
	return t, nil
}

// reresolveEvery rebuilds the last snapshot every d when it names nodes by
// host name; a failed lookup keeps the current table. It returns a stop
// function.
func (r *rebuilder) reresolveEvery(d time.Duration) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			r.mu.Lock()
			s := r.last
			r.mu.Unlock()
			if s == nil || !s.HasHostNames() {
				continue
			}
			if _, err := r.apply(s); err != nil {
				r.log.Warn("DNS refresh failed; keeping the current table", "err", err)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
