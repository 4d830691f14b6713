package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

var (
	idType    = reflect.TypeFor[ID]()
	nodesType = reflect.TypeFor[Nodes]()
)

// UnmarshalJSON accepts a JSON string or a JSON integer ≥ 1, which becomes
// its decimal text (APISIX id_schema: a string of 1–64 characters or an
// integer with minimum 1; an integral number in another syntax, 1.0 or
// 1e3, is an integer as JSONInteger says). null leaves id unchanged, as
// encoding/json does for other types. Anything else is a *json.UnmarshalTypeError, which the
// strict decoders report as APISIX does:
// `property "id" validation failed: object matches none of the required`.
// The pattern of a string id is checked by Validate, not here.
func (id *ID) UnmarshalJSON(data []byte) error {
	switch kind := JSONKind(data); kind {
	case "null":
		return nil
	case "string":
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		if s == "" {
			return &json.UnmarshalTypeError{Value: "string", Type: idType}
		}
		*id = ID(s)
		return nil
	case "number":
		if isDigits(data) && data[0] != '0' {
			*id = ID(data) // any length: the id is its text
			return nil
		}
		// 1.0 and 1e3 are integers to APISIX too (lua-cjson reads a
		// double); the id is the integer's decimal text
		n, ok := JSONInteger(data)
		if !ok || n < 1 {
			return &json.UnmarshalTypeError{Value: "number " + string(data), Type: idType}
		}
		*id = ID(strconv.FormatInt(n, 10))
		return nil
	default:
		return &json.UnmarshalTypeError{Value: kind, Type: idType}
	}
}

// UnmarshalJSON decodes both APISIX node forms (schema_def.lua nodes_schema):
//
//   - the map {"host:port": weight}: keys are split into Host and Port
//     ("[::1]:80" gives Host "::1"; a key without a port, "example.com" or
//     "[::1]", gives Port 0, the scheme's default) and the nodes are sorted
//     by key so the order does not depend on Go's map order;
//   - the array [{"host", "port", "weight", "priority", "metadata"}]: host
//     and weight are required; other keys are ignored, as APISIX's item
//     schema does not forbid them.
//
// Host never keeps IPv6 brackets. An empty map or array gives a non-nil
// empty Nodes (present but empty, which APISIX accepts: such an upstream
// answers 502); null gives nil.
//
// Errors are *Error values whose Path starts with "nodes" (the only field
// of this type), or APISIX's bare `invalid port N` for a map key whose port
// is outside 1–65535.
func (n *Nodes) UnmarshalJSON(data []byte) error {
	nodes, err := parseNodes(data)
	if err != nil {
		return within(err, "nodes")
	}
	*n = nodes
	return nil
}

// MarshalJSON writes the array form (the map form cannot carry priority).
// nil is written as null and an empty Nodes as []. Upstream.MarshalJSON
// writes the form the client sent instead, when it still describes n.
func (n Nodes) MarshalJSON() ([]byte, error) {
	if n == nil {
		return []byte("null"), nil
	}
	return json.Marshal([]Node(n))
}

// UnmarshalJSON decodes an upstream strictly (unknown fields are errors, as
// APISIX's upstream schema has additionalProperties=false) and keeps the
// nodes exactly as sent, so that MarshalJSON can echo the form the client
// used (map or array, metadata and all). Decoding through the package's
// Decode functions gives better error paths; this method exists so that a
// plain json.Unmarshal of a Route, Service or Upstream keeps that behaviour.
func (u *Upstream) UnmarshalJSON(data []byte) error {
	type plain Upstream // no methods: no recursion
	var p plain
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return err
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		return err
	}
	*u = Upstream(p)
	u.nodesRaw = keys["nodes"] // a copy: json.RawMessage.UnmarshalJSON copies
	return nil
}

// MarshalJSON writes u with its nodes in the form the client sent when u
// was decoded from JSON and u.Nodes still describes those nodes (the raw
// JSON is parsed again and compared, so changing u.Nodes after decoding is
// never undone); otherwise Nodes.MarshalJSON writes the array form. The
// "nodes" key comes last. It allocates; it is meant for the Admin API, not
// the data path.
func (u Upstream) MarshalJSON() ([]byte, error) {
	type plain Upstream
	if raw := u.sentNodes(); raw != nil {
		return json.Marshal(struct {
			plain
			Nodes json.RawMessage `json:"nodes"`
		}{plain(u), raw})
	}
	return json.Marshal(plain(u))
}

// sentNodes returns the nodes JSON as decoded, or nil if there is none or
// it no longer matches u.Nodes.
func (u *Upstream) sentNodes() json.RawMessage {
	if u.nodesRaw == nil {
		return nil
	}
	nodes, err := parseNodes(u.nodesRaw)
	if err != nil || !reflect.DeepEqual(nodes, u.Nodes) {
		return nil
	}
	return u.nodesRaw
}

// nodesMapForm reports whether u was decoded from the map form of nodes.
func (u *Upstream) nodesMapForm() bool {
	return u.nodesRaw != nil && JSONKind(u.nodesRaw) == "object" && u.sentNodes() != nil
}

// Defaults of APISIX's upstream keepalive_pool (schema_def.lua).
const (
	DefaultKeepaliveSize        = 320
	DefaultKeepaliveIdleTimeout = 60 // seconds
	DefaultKeepaliveRequests    = 1000
)

// UnmarshalJSON fills the keys the client left out with APISIX's defaults
// (size 320, idle_timeout 60, requests 1000), as APISIX's schema does, so
// that {"size": 10} is valid and a zero always means an explicit 0.
// MarshalJSON (the default one) therefore writes all three keys.
func (k *KeepalivePool) UnmarshalJSON(data []byte) error {
	type plain KeepalivePool
	p := plain{Size: DefaultKeepaliveSize, IdleTimeout: DefaultKeepaliveIdleTimeout, Requests: DefaultKeepaliveRequests}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return err
	}
	*k = KeepalivePool(p)
	return nil
}

// parseNodes decodes data (one JSON value, syntax already checked) into
// Nodes. Errors are *Error values relative to the "nodes" property, or a
// bare "invalid port N".
func parseNodes(data []byte) (Nodes, error) {
	switch JSONKind(data) {
	case "", "null":
		return nil, nil
	case "object":
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, &Error{Reason: err.Error()}
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		nodes := make(Nodes, 0, len(keys))
		for _, k := range keys {
			w, err := jsonInt(m[k])
			if err != "" {
				return nil, &Error{Reason: fmt.Sprintf(`failed to validate %s (matching ".*"): %s`, k, err)}
			}
			host, port, perr := splitNodeAddr(k)
			if perr != nil {
				return nil, perr
			}
			nodes = append(nodes, Node{Host: host, Port: port, Weight: w})
		}
		return nodes, nil
	case "array":
		var items []json.RawMessage
		if err := json.Unmarshal(data, &items); err != nil {
			return nil, &Error{Reason: err.Error()}
		}
		nodes := make(Nodes, 0, len(items))
		for i, it := range items {
			n, err := parseArrayNode(it)
			if err != "" {
				return nil, &Error{Reason: fmt.Sprintf("failed to validate item %d: %s", i+1, err)}
			}
			nodes = append(nodes, n)
		}
		return nodes, nil
	default:
		// APISIX: nodes is anyOf {object, array}.
		return nil, &Error{Reason: "object matches none of the required"}
	}
}

// parseArrayNode decodes one item of the array form. Keys match exactly
// (encoding/json would also accept "HOST"); unknown keys are ignored.
func parseArrayNode(data []byte) (Node, string) {
	if k := JSONKind(data); k != "object" {
		return Node{}, "wrong type: expected object, got " + GotType(k)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return Node{}, err.Error()
	}
	var n Node
	raw, ok := m["host"]
	if !ok {
		return n, `property "host" is required`
	}
	if k := JSONKind(raw); k != "string" {
		return n, `property "host" validation failed: wrong type: expected string, got ` + GotType(k)
	}
	_ = json.Unmarshal(raw, &n.Host)
	n.Host = unbracket(n.Host)
	ints := []struct {
		key      string
		dst      *int
		required bool
	}{{"port", &n.Port, false}, {"weight", &n.Weight, true}, {"priority", &n.Priority, false}}
	for _, f := range ints {
		raw, ok := m[f.key]
		if !ok {
			if f.required {
				return n, fmt.Sprintf("property %q is required", f.key)
			}
			continue
		}
		v, err := jsonInt(raw)
		if err != "" {
			return n, fmt.Sprintf("property %q validation failed: %s", f.key, err)
		}
		*f.dst = v
	}
	if raw, ok := m["port"]; ok && n.Port == 0 {
		// 0 means "the scheme's default" in Node; an explicit 0 is out of
		// APISIX's range (minimum 1).
		return n, fmt.Sprintf(`property "port" validation failed: expected %s to be at least 1`, raw)
	}
	if raw, ok := m["metadata"]; ok {
		if k := JSONKind(raw); k != "object" {
			return n, `property "metadata" validation failed: wrong type: expected object, got ` + GotType(k)
		}
	}
	return n, ""
}

// splitNodeAddr splits a key of the map form: "host:port", "[v6]:port",
// "host", "[v6]" and a bare IPv6 address ("::1", port 0). As in APISIX,
// which reports a bad port with the bare text `invalid port N` (upstream.lua
// check_upstream_conf), a port outside 1–65535 is an error; so is a port
// that is not a number, which APISIX would silently drop.
func splitNodeAddr(k string) (host string, port int, err error) {
	bad := func() (string, int, error) {
		return "", 0, &Error{Reason: fmt.Sprintf("invalid node address %q", k)}
	}
	var p string
	switch {
	case strings.HasPrefix(k, "["):
		end := strings.IndexByte(k, ']')
		if end < 0 {
			return bad()
		}
		host, p = k[1:end], k[end+1:]
		if p == "" {
			return host, 0, nil
		}
		if p[0] != ':' {
			return bad()
		}
		p = p[1:]
	case strings.Count(k, ":") == 0:
		return k, 0, nil
	case strings.Count(k, ":") == 1:
		host, p, _ = strings.Cut(k, ":")
	default:
		if _, err := netip.ParseAddr(k); err == nil {
			return k, 0, nil // bare IPv6 address, no port
		}
		return bad()
	}
	if host == "" || p == "" || len(p) > 10 || strings.Trim(p, "0123456789") != "" {
		return bad()
	}
	port, _ = strconv.Atoi(p)
	if port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("invalid port %d", port)
	}
	return host, port, nil
}

// unbracket turns "[::1]" into "::1".
func unbracket(h string) string {
	if len(h) >= 2 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

// jsonInt decodes a JSON integer (JSONInteger); the error is jsonschema's
// wording.
func jsonInt(raw json.RawMessage) (int, string) {
	k := JSONKind(raw)
	if k != "number" {
		return 0, "wrong type: expected integer, got " + GotType(k)
	}
	v, ok := JSONInteger(raw)
	if !ok || int64(int(v)) != v {
		return 0, "wrong type: expected integer, got number" // a fraction, or out of range
	}
	return int(v), ""
}

// JSONKind names the JSON type of a value by its first byte after JSON
// white space: "object", "array", "string", "boolean", "null" or "number"
// ("" for empty input). Package plugin's JSONKind builds on it.
func JSONKind(data []byte) string {
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) == 0 {
		return ""
	}
	switch data[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// GotType is the type name APISIX's jsonschema prints after "got" for a
// value of JSON kind k: Lua's type() of what cjson decoded, so objects and
// arrays are "table" and null is "userdata" (cjson.null).
func GotType(k string) string {
	switch k {
	case "object", "array":
		return "table"
	case "null", "":
		return "userdata"
	case "bool":
		return "boolean"
	}
	return k
}

// JSONInteger returns the value of the JSON number num when that value is
// an integer that fits an int64, whatever its syntax: 10, 10.0, 1e2 and
// 1.5e1 are integers, 10.5 is not. APISIX's jsonschema checks "integer" on
// the double lua-cjson decoded, so a number is an integer by its value,
// not by how it is written. ok is false for anything that is not a JSON
// number.
func JSONInteger(num []byte) (v int64, ok bool) {
	num = bytes.TrimSpace(num)
	if len(num) == 0 || JSONKind(num) != "number" {
		return 0, false
	}
	s := string(num)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	if !bytes.ContainsAny(num, ".eE") {
		return 0, false // an integer literal outside int64
	}
	f, err := strconv.ParseFloat(s, 64)
	// -2^63 and 2^63 are exact doubles; int64 holds [-2^63, 2^63)
	if err != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}

// isDigits reports whether b is a non-empty run of ASCII digits.
func isDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
