package plugin

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzParseCombination: no panic, and a parsed key written back in the
// ${name} form parses to the same pieces.
func FuzzParseCombination(f *testing.F) {
	for _, s := range []string{"$remote_addr $http_x_user", "${a}b", `\$x$y`, "$", "${", "${}", "plain", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		segs, err := ParseCombination(s)
		if err != nil {
			return
		}
		var b strings.Builder
		for _, sg := range segs {
			b.WriteString(strings.ReplaceAll(sg.Lit, "$", `\$`))
			if sg.Name != "" {
				b.WriteString("${" + sg.Name + "}")
			}
		}
		again, err := ParseCombination(b.String())
		require.NoError(t, err, b.String())
		assert.Equal(t, segs, again)
	})
}
