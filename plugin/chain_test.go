package plugin

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

type rewriteOnly struct{}

func (rewriteOnly) Rewrite(*Ctx) Result { return Result{} }

type accessOnly struct{}

func (accessOnly) Access(*Ctx) Result { return Result{} }

// The global rules' rewrite and access phases run before the route's
// (APISIX's run_global_rules): a global limit-count (access) counts a
// request before a route's key-auth (rewrite) can answer it; within each
// group, rewrite before access, higher priority first.
func TestChainGlobalPhasesFirst(t *testing.T) {
	ch := NewChain([]Entry{
		{Name: "key-auth", Priority: 2500, Instance: rewriteOnly{}},
		{Name: "route-access", Priority: 100, Instance: accessOnly{}},
		{Name: "limit-count", Priority: 1002, Global: true, Instance: accessOnly{}},
		{Name: "global-rewrite", Priority: 10, Global: true, Instance: rewriteOnly{}},
	})
	var got []string
	for _, s := range ch.Pre {
		got = append(got, s.Name)
	}
	assert.Equal(t, []string{"global-rewrite", "limit-count", "key-auth", "route-access"}, got)
}
