package plugin

import (
	"fmt"
	"regexp"
	"strconv"
)

// TemplatePart is one piece of a parsed template: literal text, a
// variable, or (with captures) a regex capture reference.
type TemplatePart struct {
	Lit     string // literal text, when Var == "" and Capture < 0
	Var     string // variable name ($name, ${name})
	Def     string // ${name ?? default}: the value when the variable is missing
	HasDef  bool
	Capture int // $N, ${N}: capture group N; -1 otherwise
}

// Literal reports whether p is literal text (not a variable, with or
// without a default, nor a capture).
func (p TemplatePart) Literal() bool { return p.Capture < 0 && p.Var == "" && !p.HasDef }

var (
	// APISIX core.utils.resolve_var: (?<!\\)\$(\{\s*([^}]+?)\s*\}|([\w\.]+))
	tmplName    = regexp.MustCompile(`^[\w.]+`)
	tmplBraced  = regexp.MustCompile(`^\{\s*([^}]+?)\s*\}`)
	tmplDefault = regexp.MustCompile(`\s*\?\?\s*`)
	// APISIX resolve_var_with_captures: (?<!\\)\$\{?(\d+)\}?
	tmplCapture = regexp.MustCompile(`^\{?(\d+)\}?`)
)

// ParseTemplate splits s as APISIX's core.utils.resolve_var reads it:
// `$name` (letters, digits, '_', '.'), `${name}`, `${name ?? default}`;
// a '$' after a backslash, or not followed by a name, is literal text (the
// backslash stays, as in APISIX). Every string parses.
func ParseTemplate(s string) []TemplatePart {
	parts, _ := parseTemplate(s, false) // only a capture fails
	return parts
}

// ParseTemplateCaptures is ParseTemplate where `$N` and `${N}` are
// regex_uri captures first (resolve_var_with_captures); the error is a
// capture number over 99.
func ParseTemplateCaptures(s string) ([]TemplatePart, error) { return parseTemplate(s, true) }

func parseTemplate(s string, captures bool) ([]TemplatePart, error) {
	var out []TemplatePart
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			out = append(out, TemplatePart{Lit: string(lit), Capture: -1})
			lit = nil
		}
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch != '$' || (i > 0 && s[i-1] == '\\') {
			lit = append(lit, ch)
			continue
		}
		rest := s[i+1:]
		if captures {
			if m := tmplCapture.FindStringSubmatch(rest); m != nil {
				n, err := strconv.Atoi(m[1])
				if err != nil || n > 99 {
					return nil, fmt.Errorf("capture $%s out of range", m[1])
				}
				flush()
				out = append(out, TemplatePart{Capture: n})
				i += len(m[0])
				continue
			}
		}
		p := TemplatePart{Capture: -1}
		if m := tmplBraced.FindStringSubmatch(rest); m != nil {
			segs := tmplDefault.Split(m[1], -1)
			p.Var = segs[0]
			if len(segs) > 1 {
				p.Def, p.HasDef = segs[1], true
			}
			i += len(m[0])
		} else if m := tmplName.FindString(rest); m != "" {
			p.Var = m
			i += len(m)
		} else {
			lit = append(lit, ch) // a lone '$'
			continue
		}
		flush()
		out = append(out, p)
	}
	flush()
	return out, nil
}
