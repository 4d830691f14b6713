package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGrafanaDashboard checks conf/grafana/sluice.json: valid JSON, every
// panel and query on the ${DS_PROMETHEUS} data source, unique panel ids,
// and every metric family a query names is one sluice exports.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile("../conf/grafana/sluice.json")
	require.NoError(t, err)
	var d struct {
		Inputs []struct {
			Name     string `json:"name"`
			PluginID string `json:"pluginId"`
		} `json:"__inputs"`
		UID        string `json:"uid"`
		Title      string `json:"title"`
		Templating struct {
			List []struct {
				Name, Type string
			}
		}
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource *struct {
				Type, UID string
			} `json:"datasource"`
			GridPos struct{ H, W int } `json:"gridPos"`
			Targets []struct {
				Expr       string `json:"expr"`
				Datasource struct {
					Type, UID string
				} `json:"datasource"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(raw, &d))
	assert.Equal(t, "sluice-overview", d.UID)
	require.Len(t, d.Inputs, 1)
	assert.Equal(t, "DS_PROMETHEUS", d.Inputs[0].Name)
	assert.Equal(t, "prometheus", d.Inputs[0].PluginID)
	require.NotEmpty(t, d.Templating.List)
	assert.Equal(t, "DS_PROMETHEUS", d.Templating.List[0].Name)
	assert.Equal(t, "datasource", d.Templating.List[0].Type)

	family := regexp.MustCompile(`\b(?:apisix|sluice)_[a-z_]+\b`)
	ids := map[int]bool{}
	used := map[string]bool{}
	for _, p := range d.Panels {
		assert.False(t, ids[p.ID], "panel id %d twice", p.ID)
		ids[p.ID] = true
		assert.Positive(t, p.GridPos.H, p.Title)
		if p.Type == "row" {
			continue
		}
		require.NotNil(t, p.Datasource, p.Title)
		assert.Equal(t, "${DS_PROMETHEUS}", p.Datasource.UID, p.Title)
		require.NotEmpty(t, p.Targets, p.Title)
		for _, tg := range p.Targets {
			assert.Equal(t, "${DS_PROMETHEUS}", tg.Datasource.UID, p.Title)
			for _, f := range family.FindAllString(tg.Expr, -1) {
				base := f
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					base = strings.TrimSuffix(base, suf)
				}
				_, known := help[base]
				assert.True(t, known, "%s: unknown metric %s", p.Title, f)
				used[f] = true
			}
		}
	}
	for _, f := range []string{"sluice_split_requests_total", "sluice_split_latency_seconds_bucket", "apisix_http_status",
		"apisix_upstream_status", "sluice_llm_ttft_seconds_bucket", "sluice_llm_tokens_total"} {
		assert.True(t, used[f], "no panel queries %s", f)
	}
}
