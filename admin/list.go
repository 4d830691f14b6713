package admin

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/sluice-gw/sluice/model"
)

// listFilterFields are the fields ?filter= may name, per resource (APISIX
// 3.13+: routes.lua list_filter_fields; stream_routes has the same).
var listFilterFields = map[string][]string{
	"routes": {"service_id", "upstream_id"},
}

// listFilter is what a list GET keeps, as APISIX 3.x filters a list
// (admin/v3_adapter.lua filter): every condition given must hold.
//
//   - name: the item has a string "name" in which the pattern is found
//     (APISIX: ngx.re.find, an unanchored PCRE search; here Go's RE2, so a
//     plain word is a substring match).
//   - label: the item's "labels" has that key (exactly; the value is not
//     looked at, so label=env:prod means a key "env:prod", and label= a key
//     "", as APISIX).
//   - uri: the pattern is found in the item's "uri" or in one of its "uris"
//     (items without either, all but routes, never match).
//   - filter: URL-encoded field=value pairs (filter=service_id%3D1), each
//     field one of listFilterFields, whose value must equal the item's id
//     reference (an integer id 1 equals "1": sluice reads ids as
//     model.ID).
//
// An item without the field a condition reads does not match. Unlike
// APISIX, which answers an empty list for a pattern its PCRE refuses and
// ignores a filter field it does not know, sluice refuses both (400): a
// script deleting what a filter returns must never get a list it did not
// ask for.
type listFilter struct {
	name, uri *regexp.Regexp
	label     *string
	refs      [][2]string // field, id
}

// parseListFilter reads the filter arguments of a list GET of res. It
// returns nil when there are none.
func parseListFilter(res *resource, q url.Values) (*listFilter, error) {
	var f listFilter
	given := false
	for _, arg := range []string{"name", "label", "uri", "filter"} {
		vs, ok := q[arg]
		if !ok {
			continue
		}
		if len(vs) > 1 {
			return nil, fmt.Errorf("invalid argument %s: given more than once", arg)
		}
		given = true
		v := vs[0]
		switch arg {
		case "name", "uri":
			re, err := regexp.Compile(v)
			if err != nil {
				return nil, fmt.Errorf("invalid argument %s: %v", arg, err)
			}
			if arg == "name" {
				f.name = re
			} else {
				f.uri = re
			}
		case "label":
			f.label = &v
		case "filter":
			pairs, err := url.ParseQuery(v)
			if err != nil {
				return nil, fmt.Errorf("invalid argument filter: %v", err)
			}
			fields := listFilterFields[res.name]
			for _, k := range sortedKeys(pairs) {
				if !slices.Contains(fields, k) {
					return nil, fmt.Errorf("invalid argument filter: %s cannot be filtered by %q (fields: %s)",
						res.name, k, strings.Join(fields, ", "))
				}
				vals := pairs[k]
				f.refs = append(f.refs, [2]string{k, vals[len(vals)-1]}) // APISIX: the last value
			}
		}
	}
	if !given {
		return nil, nil
	}
	return &f, nil
}

func sortedKeys(m url.Values) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// keep reports whether the stored JSON raw passes f. Keys are matched
// exactly (encoding/json would also read "NAME" into a name field).
func (f *listFilter) keep(raw []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return false
	}
	str := func(v json.RawMessage) (string, bool) {
		var s string
		return s, model.JSONKind(v) == "string" && json.Unmarshal(v, &s) == nil
	}
	if f.name != nil {
		if s, ok := str(m["name"]); !ok || !f.name.MatchString(s) {
			return false
		}
	}
	if f.label != nil {
		var labels map[string]json.RawMessage
		if model.JSONKind(m["labels"]) != "object" || json.Unmarshal(m["labels"], &labels) != nil {
			return false
		}
		if _, ok := labels[*f.label]; !ok {
			return false
		}
	}
	if f.uri != nil {
		found := false
		if s, ok := str(m["uri"]); ok && f.uri.MatchString(s) {
			found = true
		}
		var uris []json.RawMessage
		if !found && model.JSONKind(m["uris"]) == "array" && json.Unmarshal(m["uris"], &uris) == nil {
			for _, u := range uris {
				if s, ok := str(u); ok && f.uri.MatchString(s) {
					found = true
					break
				}
			}
		}
		if !found {
			return false
		}
	}
	for _, ref := range f.refs {
		raw, ok := m[ref[0]]
		var id model.ID
		if !ok || json.Unmarshal(raw, &id) != nil || id == "" || string(id) != ref[1] {
			return false
		}
	}
	return true
}
