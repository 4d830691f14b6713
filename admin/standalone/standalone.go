// Package standalone owns APISIX's standalone mode (config_provider: yaml):
// Parse turns conf/apisix.yaml into a model.Snapshot, and Watcher polls the
// file and hands each new, valid snapshot to the caller (which builds and
// publishes the routing table).
//
// Parse may be called from any goroutine. A Watcher runs apply on its own
// poller goroutine, or on the goroutine calling Start or Reload, one call
// at a time.
package standalone

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sluice-gw/sluice/model"
)

// ErrNoEndMarker is returned by Parse for a file that does not end with
// #END. APISIX (core/config_yaml.lua) refuses such a file as incomplete: a
// file caught half-written must never be loaded.
var ErrNoEndMarker = errors.New("standalone: apisix.yaml: missing #END marker (file incomplete?)")

// ItemError is an error in one item of a list in apisix.yaml. Error()
// reads `standalone: routes[2]: missing id`.
type ItemError struct {
	List  string // "routes", "upstreams", ...
	Index int    // position in the list, from 0
	Line  int    // line of the item in the file, from 1
	Err   error
}

func (e *ItemError) Error() string {
	return fmt.Sprintf("standalone: %s[%d]: %v", e.List, e.Index, e.Err)
}

func (e *ItemError) Unwrap() error { return e.Err }

// Top-level keys of apisix.yaml. APISIX has more resources than sluice
// serves: those are refused by name rather than silently ignored.
const (
	keyRoutes        = "routes"
	keyUpstreams     = "upstreams"
	keyServices      = "services"
	keyPluginConfigs = "plugin_configs"
	keyGlobalRules   = "global_rules"
	keyConsumers     = "consumers"
	keySSLs          = "ssls"
)

var (
	knownKeys       = []string{keyRoutes, keyUpstreams, keyServices, keyPluginConfigs, keyGlobalRules, keyConsumers, keySSLs}
	unsupportedKeys = []string{"stream_routes", "plugin_metadata", "protos", "secrets", "consumer_groups"}
)

// Parse reads the content of APISIX's conf/apisix.yaml into a snapshot:
//
//   - the content must end with #END (trailing white space allowed, as in
//     APISIX), or Parse returns ErrNoEndMarker;
//   - the YAML becomes JSON (map keys must be strings; YAML integers stay
//     JSON integers; anchors, aliases and merge keys are expanded) and each
//     item goes through model's strict decoder and Validate, so it is held
//     to the Admin API's rules and its errors read the same, prefixed with
//     the list and index (`standalone: routes[2]: invalid configuration:
//     ...`);
//   - every item needs an id, unique within its list;
//   - routes keep the file's order; upstreams and services fill the
//     snapshot's maps; plugin_configs and global_rules are kept as the
//     items' JSON (their plugins are checked by router.Build);
//   - consumers are keyed by username (they have no id): the username
//     must be unique, and so must a key-auth key (APISIX's
//     check_duplicate_key); they fill snap.Consumers;
//   - ssls are accepted and ignored for now (no downstream TLS from this
//     file yet);
//   - APISIX's "<resource>_conf_version" keys (API-driven standalone) are
//     ignored; any other top-level key is an error naming it.
//
// References between resources (upstream_id, service_id, plugin_config_id)
// are checked by router.Build, not here. APISIX's ${{ENV}} substitution is
// not supported.
func Parse(data []byte) (*model.Snapshot, error) {
	if !hasEndMarker(data) {
		return nil, ErrNoEndMarker
	}
	root, err := decodeYAML(data)
	if err != nil {
		return nil, err
	}
	snap := model.NewSnapshot()
	if root == nil {
		return snap, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("standalone: apisix.yaml: line %d: the top level must be a mapping, not %s", root.Line, kindName(root))
	}

	type list struct {
		key  string
		node *yaml.Node
	}
	var lists []list
	var unknown []string
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			return nil, fmt.Errorf("standalone: apisix.yaml: line %d: top-level key %q is not a string", k.Line, k.Value)
		}
		key := k.Value
		if seen[key] {
			return nil, fmt.Errorf("standalone: apisix.yaml: line %d: duplicate top-level key %q", k.Line, key)
		}
		seen[key] = true
		switch {
		case slices.Contains(knownKeys, key):
			lists = append(lists, list{key, v})
		case slices.Contains(unsupportedKeys, key):
			return nil, fmt.Errorf("standalone: apisix.yaml: line %d: %s: not supported by sluice", k.Line, key)
		case strings.HasSuffix(key, "_conf_version"):
			// APISIX's API-driven standalone mode writes these; nothing
			// to do with them here.
		default:
			unknown = append(unknown, strconv.Quote(key))
		}
	}
	switch len(unknown) {
	case 0:
	case 1:
		return nil, fmt.Errorf("standalone: apisix.yaml: unknown top-level key %s", unknown[0])
	default:
		return nil, fmt.Errorf("standalone: apisix.yaml: unknown top-level keys %s", strings.Join(unknown, ", "))
	}

	for _, l := range lists {
		if l.key == keySSLs {
			// Accepted and ignored for now (see above).
			if n := deref(l.node); !isNull(n) && n.Kind != yaml.SequenceNode {
				return nil, fmt.Errorf("standalone: %s: line %d: expected a list, not %s", l.key, n.Line, kindName(n))
			}
			continue
		}
		if l.key == keyConsumers {
			if err := addConsumers(snap, l.node); err != nil {
				return nil, err
			}
			continue
		}
		items, err := listItems(l.key, l.node)
		if err != nil {
			return nil, err
		}
		ids := map[string]int{}
		for i, it := range items {
			ierr := func(err error) error { return &ItemError{List: l.key, Index: i, Line: it.line, Err: err} }
			id, err := itemID(it.json)
			if err != nil {
				return nil, ierr(err)
			}
			if j, dup := ids[id]; dup {
				return nil, ierr(fmt.Errorf("duplicate id %q (also %s[%d])", id, l.key, j))
			}
			ids[id] = i
			if err := add(snap, l.key, id, it.json); err != nil {
				return nil, ierr(err)
			}
		}
	}
	return snap, nil
}

// hasEndMarker reports whether data ends with the comment #END, white
// space after it allowed. APISIX only looks for "#END\s*$" in the last 10
// bytes; here the marker must also be a comment (preceded by white space
// or at the start), so "uri: /a#END" cut short does not pass.
func hasEndMarker(data []byte) bool {
	rest, ok := bytes.CutSuffix(bytes.TrimRight(data, " \t\r\n\v\f"), []byte("#END"))
	return ok && (len(rest) == 0 || bytes.ContainsAny(rest[len(rest)-1:], " \t\r\n"))
}

// add decodes, validates and stores one item of list key.
func add(snap *model.Snapshot, key, id string, js []byte) error {
	switch key {
	case keyRoutes:
		r, err := model.DecodeRoute(js)
		if err != nil {
			return err
		}
		if err := r.Validate(); err != nil {
			return err
		}
		snap.Routes = append(snap.Routes, r)
	case keyUpstreams:
		u, err := model.DecodeUpstream(js)
		if err != nil {
			return err
		}
		if err := u.Validate(); err != nil {
			return err
		}
		snap.Upstreams[id] = u
	case keyServices:
		s, err := model.DecodeService(js)
		if err != nil {
			return err
		}
		if err := s.Validate(); err != nil {
			return err
		}
		snap.Services[id] = s
	case keyPluginConfigs:
		if err := checkPluginsItem(js, model.PluginConfigKeys); err != nil {
			return err
		}
		snap.PluginConfigs[id] = js
	case keyGlobalRules:
		if err := checkPluginsItem(js, model.GlobalRuleKeys); err != nil {
			return err
		}
		snap.GlobalRules[id] = js
	}
	return nil
}

// addConsumers decodes the consumers list into snap.Consumers: each item is
// checked as the Admin API checks a consumer (APISIX schema_def.lua
// consumer and key-auth's consumer schema); usernames and key-auth keys
// must be unique.
func addConsumers(snap *model.Snapshot, n *yaml.Node) error {
	items, err := listItems(keyConsumers, n)
	if err != nil {
		return err
	}
	users := map[string]int{}
	keys := map[string]string{}
	for i, it := range items {
		ierr := func(err error) error { return &ItemError{List: keyConsumers, Index: i, Line: it.line, Err: err} }
		c, err := decodeConsumer(it.json)
		if err != nil {
			return ierr(err)
		}
		if j, dup := users[c.Username]; dup {
			return ierr(fmt.Errorf("duplicate username %q (also %s[%d])", c.Username, keyConsumers, j))
		}
		users[c.Username] = i
		if key := keyAuthKey(c); key != "" {
			if other, dup := keys[key]; dup {
				// APISIX admin/consumers.lua check_duplicate_key.
				return ierr(fmt.Errorf("duplicate key found with consumer: %s", other))
			}
			keys[key] = c.Username
		}
		snap.Consumers[c.Username] = c
	}
	return nil
}

// decodeConsumer checks one consumer item as the Admin API does.
func decodeConsumer(js []byte) (*model.Consumer, error) {
	m, err := model.Object(js)
	if err != nil {
		return nil, err
	}
	return model.DecodeConsumer(m)
}

// keyAuthKey returns c's key-auth key, or "".
func keyAuthKey(c *model.Consumer) string {
	var conf struct {
		Key string `json:"key"`
	}
	if raw, ok := c.Plugins["key-auth"]; ok && json.Unmarshal(raw, &conf) == nil {
		return conf.Key
	}
	return ""
}

// itemID returns the id of an item (a JSON object), as model.ID reads it.
func itemID(js []byte) (string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(js, &m); err != nil {
		return "", err
	}
	raw, ok := m["id"]
	if !ok || string(raw) == "null" {
		return "", errors.New("missing id")
	}
	var id model.ID
	if err := json.Unmarshal(raw, &id); err != nil || !model.ValidID(string(id)) {
		return "", &model.Error{Path: []string{"id"}, Reason: "object matches none of the required"}
	}
	return string(id), nil
}

// checkPluginsItem checks a plugin_config or global_rule item as the Admin
// API does (model.CheckPluginsItem).
func checkPluginsItem(js []byte, keys []string) error {
	m, err := model.Object(js)
	if err != nil {
		return err
	}
	return model.CheckPluginsItem(m, keys...)
}

type item struct {
	line int
	json []byte
}

// listItems converts the items of one top-level list to JSON objects.
func listItems(key string, n *yaml.Node) ([]item, error) {
	n = deref(n)
	if isNull(n) {
		return nil, nil // "routes:" with nothing under it
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("standalone: %s: line %d: expected a list, not %s", key, n.Line, kindName(n))
	}
	items := make([]item, 0, len(n.Content))
	for i, c := range n.Content {
		c = deref(c)
		if c.Kind != yaml.MappingNode {
			return nil, &ItemError{List: key, Index: i, Line: c.Line, Err: fmt.Errorf("expected a mapping, not %s", kindName(c))}
		}
		budget := maxNodes
		v, err := toValue(c, &budget, 0)
		if err != nil {
			return nil, &ItemError{List: key, Index: i, Line: c.Line, Err: err}
		}
		js, err := json.Marshal(v)
		if err != nil {
			return nil, &ItemError{List: key, Index: i, Line: c.Line, Err: err}
		}
		items = append(items, item{line: c.Line, json: js})
	}
	return items, nil
}

// decodeYAML parses data into its root node: nil for a document with no
// content (comments only), an error for more than one document.
func decodeYAML(data []byte) (root *yaml.Node, err error) {
	defer func() {
		// A file must never take the process down (the Watcher parses on
		// its own goroutine): a panic inside the YAML library is an error.
		if p := recover(); p != nil {
			root, err = nil, fmt.Errorf("standalone: apisix.yaml: yaml: %v", p)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("standalone: apisix.yaml: %w", err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, fmt.Errorf("standalone: apisix.yaml: %w", err)
	default:
		return nil, fmt.Errorf("standalone: apisix.yaml: line %d: more than one YAML document", next.Line)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root = deref(doc.Content[0])
	if isNull(root) {
		return nil, nil
	}
	return root, nil
}

// maxNodes bounds the nodes one item may expand to: aliases can make a
// small file expand exponentially ("billion laughs"). maxDepth bounds the
// nesting, which an alias to an enclosing node ("&a [*a]") makes infinite.
const (
	maxNodes = 1 << 20
	maxDepth = 200
)

var decimal = regexp.MustCompile(`^[-+]?[0-9]+$`)

// toValue converts a YAML node to a value for encoding/json: map[string]any,
// []any, string, json.Number, bool or nil. Errors name the line.
func toValue(n *yaml.Node, budget *int, depth int) (any, error) {
	if err := spend(n, budget, depth); err != nil {
		return nil, err
	}
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		return toMap(n, budget, depth)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := toValue(c, budget, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.ScalarNode:
		return toScalar(n)
	default:
		return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
	}
}

// toMap converts a mapping, expanding merge keys ("<<: *base"; keys of
// the mapping itself win, then earlier merged mappings).
func toMap(n *yaml.Node, budget *int, depth int) (map[string]any, error) {
	out := make(map[string]any, len(n.Content)/2)
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			return nil, fmt.Errorf("line %d: map key %s is not a string", k.Line, keyText(k))
		}
		if _, dup := out[k.Value]; dup {
			return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
		}
		val, err := toValue(v, budget, depth+1)
		if err != nil {
			return nil, err
		}
		out[k.Value] = val
	}
	for _, m := range merges {
		m = deref(m)
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, src := range srcs {
			src = deref(src)
			if src.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("line %d: a merge key (<<) needs a mapping", src.Line)
			}
			if err := spend(src, budget, depth+1); err != nil {
				return nil, err
			}
			mv, err := toMap(src, budget, depth+1)
			if err != nil {
				return nil, err
			}
			for k, v := range mv {
				if _, ok := out[k]; !ok {
					out[k] = v
				}
			}
		}
	}
	return out, nil
}

// spend accounts for one node at depth.
func spend(n *yaml.Node, budget *int, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("line %d: YAML nested more than %d deep (an alias to an enclosing node?)", n.Line, maxDepth)
	}
	if *budget--; *budget < 0 {
		return fmt.Errorf("line %d: too many YAML nodes after expanding aliases", n.Line)
	}
	return nil
}

func toScalar(n *yaml.Node) (any, error) {
	switch tag := n.ShortTag(); tag {
	case "!!str", "!!timestamp", "!!binary":
		return n.Value, nil // a timestamp stays the text written
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return b, nil
	case "!!int", "!!float":
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		switch x := v.(type) {
		case int:
			return json.Number(strconv.Itoa(x)), nil
		case int64:
			return json.Number(strconv.FormatInt(x, 10)), nil
		case uint64:
			return json.Number(strconv.FormatUint(x, 10)), nil
		case float64:
			if plain := strings.TrimPrefix(strings.ReplaceAll(n.Value, "_", ""), "+"); decimal.MatchString(plain) {
				// An integer too large for 64 bits stays an integer.
				return json.Number(plain), nil
			}
			if math.IsInf(x, 0) || math.IsNaN(x) {
				return nil, fmt.Errorf("line %d: %s is not a JSON number", n.Line, n.Value)
			}
			b, err := json.Marshal(x)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			return json.Number(b), nil
		}
		return nil, fmt.Errorf("line %d: unexpected number %q", n.Line, n.Value)
	default:
		return nil, fmt.Errorf("line %d: unsupported YAML tag %s", n.Line, tag)
	}
}

// Value converts a YAML node to a value for encoding/json (map[string]any,
// []any, string, json.Number, bool or nil), expanding aliases and merge
// keys within bounds that stop alias bombs and self-references; errors
// name the line. sluice apply decodes its files with it too.
func Value(n *yaml.Node) (any, error) {
	budget := maxNodes
	return toValue(n, &budget, 0)
}

// Deref follows aliases and unwraps a document node.
func Deref(n *yaml.Node) *yaml.Node { return deref(n) }

// deref follows aliases (and unwraps a document node).
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && i < 100; i++ {
		switch {
		case n.Kind == yaml.AliasNode && n.Alias != nil:
			n = n.Alias
		case n.Kind == yaml.DocumentNode && len(n.Content) == 1:
			n = n.Content[0]
		default:
			return n
		}
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return fmt.Sprintf("%s %q", strings.TrimPrefix(n.ShortTag(), "!!"), n.Value)
	default:
		return "an unexpected node"
	}
}

func keyText(k *yaml.Node) string {
	if k.Kind == yaml.ScalarNode {
		return fmt.Sprintf("%s (%s)", k.Value, strings.TrimPrefix(k.ShortTag(), "!!"))
	}
	return kindName(k)
}
