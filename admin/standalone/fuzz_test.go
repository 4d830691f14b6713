package standalone

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/model"
)

// FuzzParse: Parse never panics, and what it returns is a usable snapshot
// whose routes survive a JSON round trip.
func FuzzParse(f *testing.F) {
	f.Add([]byte(benchYAML))
	f.Add([]byte("#END"))
	f.Add([]byte("upstreams:\n  - &b {id: u, nodes: {\"a:1\": 1}}\n  - {<<: *b, id: v}\nroutes:\n  - {id: 1, uris: [/a], upstream_id: u, vars: [[arg_x, \"==\", 1]]}\n#END\n"))
	f.Add([]byte("plugin_configs:\n  - {id: p, plugins: {a: {}}}\nglobal_rules:\n  - {id: g, plugins: {b: {x: [1, 2.5, ~, true]}}}\nconsumers: []\n#END\n"))
	f.Add([]byte("routes:\n  - id: r\n    uri: /\n    labels: {1: x}\n#END\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, err := Parse(data)
		if err != nil {
			require.Nil(t, snap)
			return
		}
		require.NotNil(t, snap.Upstreams)
		require.NotNil(t, snap.Services)
		require.NotNil(t, snap.PluginConfigs)
		require.NotNil(t, snap.GlobalRules)
		for _, r := range snap.Routes {
			b, err := json.Marshal(r)
			require.NoError(t, err)
			r2, err := model.DecodeRoute(b)
			require.NoError(t, err, "%s", b)
			require.NoError(t, r2.Validate(), "%s", b)
		}
		for _, raw := range snap.PluginConfigs {
			require.True(t, json.Valid(raw))
		}
	})
}
