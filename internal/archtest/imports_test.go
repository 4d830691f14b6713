// Package archtest checks the import direction of STYLE §1: the data path
// goes engine → router → plugin → balancer, the control path admin →
// router, and engine and admin meet only in cmd/sluice.
package archtest

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const mod = "github.com/sluice-gw/sluice/"

// deps returns the sluice packages pkg imports, directly or not.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", mod+pkg).Output()
	require.NoError(t, err, "go list %s", pkg)
	var list []string
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, mod) && p != mod+pkg {
			list = append(list, strings.TrimPrefix(p, mod))
		}
	}
	return list
}

func TestImportDirection(t *testing.T) {
	forbidden := map[string][]string{
		"engine":              {"admin", "cmd", "conf"},
		"router":              {"engine", "admin", "cmd", "conf"},
		"plugin":              {"engine", "router", "admin", "cmd"},
		"plugin/trafficsplit": {"engine", "router", "admin", "cmd"},
		"plugin/prometheus":   {"engine", "router", "admin", "cmd"},
		"plugin/limitcount":   {"engine", "router", "admin", "cmd"},
		"plugin/keyauth":      {"engine", "router", "admin", "cmd"},
		"plugin/proxyrewrite": {"engine", "router", "admin", "cmd"},
		"plugin/apibreaker":   {"engine", "router", "admin", "cmd"},
		"balancer":            {"engine", "router", "plugin", "admin", "cmd"},
		"engine/http1":        {"engine", "router", "plugin", "admin", "cmd"},
		"admin":               {"engine", "cmd"},
		"admin/store":         {"engine", "router", "plugin", "admin", "cmd"},
		"conf":                {"engine", "router", "plugin", "admin", "cmd"},
		"metrics":             {"engine", "router", "admin", "cmd"},
		"engine/accesslog":    {"router", "plugin", "admin", "cmd"},
	}
	for pkg, bad := range forbidden {
		for _, d := range deps(t, pkg) {
			if d == "engine/http1" && pkg != "engine/http1" {
				continue // the HTTP/1.1 leaf types every layer may use
			}
			for _, b := range bad {
				if d == b || strings.HasPrefix(d, b+"/") {
					if pkg == "engine" && strings.HasPrefix(d, "engine/") {
						continue
					}
					t.Errorf("%s imports %s (STYLE §1 forbids %s → %s)", pkg, d, pkg, b)
				}
			}
		}
	}
}
