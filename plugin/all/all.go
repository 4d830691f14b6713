// Package all registers every plugin sluice ships, as Caddy's
// modules/standard does: importing it (cmd/sluice, tests) makes the APISIX
// plugin names known to router.Build.
package all

import (
	_ "github.com/sluice-gw/sluice/plugin/apibreaker"
	_ "github.com/sluice-gw/sluice/plugin/keyauth"
	_ "github.com/sluice-gw/sluice/plugin/limitcount"
	_ "github.com/sluice-gw/sluice/plugin/prometheus"
	_ "github.com/sluice-gw/sluice/plugin/proxyrewrite"
	_ "github.com/sluice-gw/sluice/plugin/trafficsplit"
)
