package router

import (
	"context"
	"net/netip"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/model"
)

// STUBS: replaced by the real implementation. Signatures are the contract.

type matcher struct{}
type index struct{}

// Resolver resolves node host names (net.Resolver.LookupNetIP in production,
// a fake in tests).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Builder builds tables. It keeps what must outlive a table (node health in
// Registry, DNS answers) between builds. Not safe for concurrent use: one
// builder goroutine owns it.
type Builder struct {
	Registry *balancer.Registry
	Resolver Resolver
}

// Build compiles snap into a new Table. Errors name the resource and field
// ("route r1: upstream_id \"9\" not found"). Host-name nodes are resolved
// here with Resolver (a failed lookup is an error naming the host).
func (b *Builder) Build(snap *model.Snapshot) (*Table, error) { panic("todo") }

// Match returns the route for r, or nil (404). It does not allocate.
func (t *Table) Match(r *Request) *Route { panic("todo") }
