package plugin

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseTemplate(t *testing.T) {
	lit := func(s string) TemplatePart { return TemplatePart{Lit: s, Capture: -1} }
	v := func(name string) TemplatePart { return TemplatePart{Var: name, Capture: -1} }
	f := func(s string, captures bool, want ...TemplatePart) {
		t.Helper()
		got, err := parseTemplate(s, captures)
		require.NoError(t, err, s)
		if !captures {
			assert.Equal(t, got, ParseTemplate(s))
		}
		assert.Equal(t, want, got, s)
	}
	f("$remote_addr $http_x_user", false, v("remote_addr"), lit(" "), v("http_x_user"))
	f("${a}b", false, v("a"), lit("b"))
	f(`\$x$y`, false, lit(`\$x`), v("y")) // the backslash stays, as in APISIX
	f("$post_arg.model-x", false, v("post_arg.model"), lit("-x"))
	f("${ http_x ?? anon }/", false, TemplatePart{Var: "http_x", Def: "anon", HasDef: true, Capture: -1}, lit("/"))
	f("$", false, lit("$"))
	f("${", false, lit("${"))
	f("${}", false, lit("${}"))
	f("a$-b", false, lit("a$-b"))
	f("", false)
	f("/v1/$1/${2}", true, lit("/v1/"), TemplatePart{Capture: 1}, lit("/"), TemplatePart{Capture: 2})
	f("/v1/$1", false, lit("/v1/"), v("1"))
	_, err := ParseTemplateCaptures("$100")
	assert.EqualError(t, err, "capture $100 out of range")
}

// FuzzParseTemplate: no panic, and the parts written back in the ${name}
// form parse to the same parts.
func FuzzParseTemplate(f *testing.F) {
	for _, s := range []string{"$remote_addr $http_x_user", "${a}b", `\$x$y`, "$", "${", "${}", "${a ?? b}", "plain", "", "$1${2}"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, captures bool) {
		parts, err := parseTemplate(s, captures)
		if err != nil {
			return
		}
		var b strings.Builder
		for _, p := range parts {
			switch {
			case p.Capture >= 0 || p.Var != "" || p.HasDef:
				if strings.ContainsAny(p.Var+p.Def, "{}$\\?") || p.Var == "" || strings.TrimSpace(p.Var) != p.Var {
					return // not written back unambiguously
				}
				if p.Capture >= 0 {
					b.WriteString("${" + strconv.Itoa(p.Capture) + "}")
				} else if p.HasDef {
					b.WriteString("${" + p.Var + " ?? " + p.Def + "}")
				} else {
					b.WriteString("${" + p.Var + "}")
				}
			default:
				if strings.ContainsAny(p.Lit, "$\\") {
					return
				}
				b.WriteString(p.Lit)
			}
		}
		again, err := parseTemplate(b.String(), captures)
		require.NoError(t, err, b.String())
		assert.Equal(t, parts, again, "%q → %q", s, b.String())
	})
}
