package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scriptedResolver answers by name through answer and counts the lookups.
type scriptedResolver struct {
	answer func(host string) ([]netip.Addr, error)
	calls  map[string]int
}

func (r *scriptedResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.calls[host]++
	return r.answer(host)
}

// A lookup that timed out is answered from the cache until the next DNS
// refresh (expire), so writes in a DNS outage do not each wait out the
// timeout again; a name the DNS says does not exist (a quick answer) is
// asked again; a name that resolved keeps its last answer.
func TestCachingResolverTimeouts(t *testing.T) {
	down := false
	timeout := &net.DNSError{Err: "i/o timeout", Name: "slow.example", IsTimeout: true}
	addr := netip.MustParseAddr("192.0.2.1")
	next := &scriptedResolver{calls: map[string]int{}, answer: func(host string) ([]netip.Addr, error) {
		switch {
		case host == "slow.example":
			return nil, timeout
		case host == "ok.example" && !down:
			return []netip.Addr{addr}, nil
		case host == "ok.example":
			return nil, context.DeadlineExceeded
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}}
	c := newCachingResolver(next, slog.New(slog.NewTextHandler(io.Discard, nil)))
	lookup := func(host string) ([]netip.Addr, error) {
		return c.LookupNetIP(context.Background(), "ip", host)
	}

	for range 3 {
		_, err := lookup("slow.example")
		assert.True(t, errors.Is(err, timeout))
		_, err = lookup("gone.example")
		assert.Error(t, err)
	}
	assert.Equal(t, 1, next.calls["slow.example"], "a timeout is remembered")
	assert.Equal(t, 3, next.calls["gone.example"], "not found is asked again")

	got, err := lookup("ok.example")
	require.NoError(t, err)
	assert.Equal(t, []netip.Addr{addr}, got)

	c.expire()
	down = true
	_, err = lookup("slow.example")
	assert.Error(t, err)
	assert.Equal(t, 2, next.calls["slow.example"], "asked again after the refresh")
	for range 3 {
		got, err = lookup("ok.example")
		require.NoError(t, err, "the last answer is kept when the lookup fails")
		assert.Equal(t, []netip.Addr{addr}, got)
	}
	assert.Equal(t, 2, next.calls["ok.example"], "and, timed out, not asked again before the refresh")
}
