package plugin

import (
	"strconv"
	"strings"
)

// CombinationPart is a parsed var_combination piece: literal text, then a
// variable name ("" at the end).
type CombinationPart struct {
	Lit, Name string
}

// ParseCombination splits a var_combination key (limit-count's key,
// chash's vars_combinations): "$name" and "${name}"
// (name: letters, digits, '_') are variables, "\$" is a literal '$',
// anything else is literal (APISIX core.utils.resolve_var).
func ParseCombination(s string) ([]CombinationPart, error) {
	var out []CombinationPart
	var lit strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c == '\\' && i+1 < len(s) && s[i+1] == '$' {
			lit.WriteByte('$')
			i += 2
			continue
		}
		if c != '$' {
			lit.WriteByte(c)
			i++
			continue
		}
		j := i + 1
		brace := j < len(s) && s[j] == '{'
		if brace {
			j++
		}
		k := j
		for k < len(s) && isNameByte(s[k]) {
			k++
		}
		if k == j {
			return nil, combinationError("\"$\" at offset " + strconv.Itoa(i) + " does not start a variable name")
		}
		varName := s[j:k]
		if brace {
			if k >= len(s) || s[k] != '}' {
				return nil, combinationError("unterminated \"${\" at offset " + strconv.Itoa(i))
			}
			k++
		}
		out = append(out, CombinationPart{Lit: lit.String(), Name: varName})
		lit.Reset()
		i = k
	}
	if lit.Len() > 0 || len(out) == 0 {
		out = append(out, CombinationPart{Lit: lit.String()})
	}
	return out, nil
}

type combinationError string

func (e combinationError) Error() string { return string(e) }

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}
