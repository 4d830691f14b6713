package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// DecodeRoute decodes an APISIX route strictly, as APISIX's schema does
// (additionalProperties=false): an unknown or wrongly cased key is an error
// (`invalid configuration: additional properties forbidden, found uir`),
// and so is a value of the wrong type (`invalid configuration: property
// "uri" validation failed: wrong type: expected string, got number`).
// Errors in nested objects name the path (`property "upstream" validation
// failed: property "timeout" validation failed: ...`). Malformed JSON gives
// `invalid request body: <reason>` (APISIX's text for a body cjson rejects).
//
// DecodeRoute checks form, not meaning: call Validate on the result.
// Decoding and schema errors are *Error values except the bare texts APISIX
// uses (`invalid request body: ...`, `invalid port N`).
func DecodeRoute(data []byte) (*Route, error) {
	var r Route
	if err := decodeStrict(data, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// DecodeRouteMatch reads what a route matches on from a stored route that
// does not decode or validate (another writer's), each field on its own,
// and what it references (service_id, upstream_id, plugin_config_id). A
// field that does not read is dropped so that the route matches more,
// never less (a placeholder that answers an error must catch every request
// the route would have taken): an unreadable uri or uris entry makes the
// path "/*", unreadable hosts set HostsUnknown (the route belongs under
// every host), an unreadable remote address drops every address
// restriction, an unreadable priority makes it the highest. A status equal
// to 0 keeps the route disabled. It returns nil only when data is not a
// JSON object or has neither uri nor uris. The result has Invalid set to err.
func DecodeRouteMatch(data []byte, err error) *Route {
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return nil
	}
	r := &Route{Invalid: err}
	field := func(name string, dst any) (present, ok bool) {
		raw, present := obj[name]
		return present, present && !isNull(raw) && json.Unmarshal(raw, dst) == nil
	}
	anyPath := false
	hasURI, okURI := field("uri", &r.URI)
	anyPath = hasURI && !okURI
	var uris []json.RawMessage
	hasURIs, okURIs := field("uris", &uris)
	anyPath = anyPath || hasURIs && !okURIs
	for _, raw := range uris {
		var u string
		if isNull(raw) || json.Unmarshal(raw, &u) != nil {
			anyPath = true
			continue
		}
		r.URIs = append(r.URIs, u)
	}
	if !hasURI && !hasURIs {
		return nil
	}
	if anyPath {
		r.URI, r.URIs = "/*", nil
	}
	hasHost, okHost := field("host", &r.Host)
	hasHosts, okHosts := field("hosts", &r.Hosts)
	if hasHost && !okHost || hasHosts && !okHosts {
		r.Host, r.Hosts, r.HostsUnknown = "", nil, true
	}
	field("methods", &r.Methods) // unreadable: any method
	hasRA, okRA := field("remote_addr", &r.RemoteAddr)
	hasRAs, okRAs := field("remote_addrs", &r.RemoteAddrs)
	if hasRA && !okRA || hasRAs && !okRAs {
		r.RemoteAddr, r.RemoteAddrs = "", nil
	}
	if raw, ok := obj["priority"]; ok {
		p, reason := jsonInt(raw) // 10.0 is 10, as in DecodeRoute
		if reason != "" {
			p = math.MaxInt
		}
		r.Priority = p
	}
	field("service_id", &r.ServiceID)
	field("upstream_id", &r.UpstreamID)
	field("plugin_config_id", &r.PluginConfigID)
	if raw, ok := obj["vars"]; ok {
		r.Vars = raw // compiled (or dropped) by the table builder
	}
	var status float64
	if _, ok := field("status", &status); ok && status == 0 {
		zero := 0
		r.Status = &zero // a disabled route stays disabled
	}
	return r
}

// isNull reports whether raw is JSON null, which json.Unmarshal takes for
// a zero value without an error: a lenient reader must count it unread.
func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// DecodeConsumerPlugins reads the plugin configurations of a stored
// consumer that does not decode or validate, leniently, so that the keys
// it holds can be kept from authenticating anyone (an auth plugin gives a
// key to one consumer only when no other consumer holds it). It returns
// nil when they do not read. The result has Invalid set to err.
func DecodeConsumerPlugins(data []byte, err error) *Consumer {
	plugins := LenientPlugins(data)
	if len(plugins) == 0 {
		return nil
	}
	return &Consumer{Plugins: plugins, Invalid: err}
}

// LenientPlugins reads the "plugins" object of a stored item that does not
// decode or validate, by its exact name (a struct would also take
// "PLUGINS"); nil when it does not read.
func LenientPlugins(data []byte) map[string]json.RawMessage {
	var obj, plugins map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil || json.Unmarshal(obj["plugins"], &plugins) != nil {
		return nil
	}
	return plugins
}

// DecodeServiceHosts reads the hosts of a stored service that does not
// decode or validate, as DecodeRouteMatch reads a route's: unreadable
// hosts set HostsUnknown. The result has Invalid set to err; routes using it
// answer an error in its hosts.
func DecodeServiceHosts(data []byte, err error) *Service {
	sv := &Service{Invalid: err}
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		sv.HostsUnknown = true
		return sv
	}
	if raw, ok := obj["hosts"]; ok && json.Unmarshal(raw, &sv.Hosts) != nil {
		sv.Hosts, sv.HostsUnknown = nil, true
	}
	return sv
}

// DecodeUpstream decodes an APISIX upstream strictly; see DecodeRoute. The
// nodes are kept as sent, so json.Marshal of the result echoes the form the
// client used.
func DecodeUpstream(data []byte) (*Upstream, error) {
	var u Upstream
	if err := decodeStrict(data, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// DecodeService decodes an APISIX service strictly; see DecodeRoute.
func DecodeService(data []byte) (*Service, error) {
	var s Service
	if err := decodeStrict(data, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// ForbidTimestamps reports create_time or update_time in a client's JSON
// object (also inside "upstream" and "plugins"), with APISIX's text for it
// (admin/resource.lua check_forbidden_properties, double space included):
// `the property is forbidden:  create_time`. The Admin API calls it on PUT,
// POST and PATCH bodies; the server owns both fields. Data that is not a
// JSON object gives nil: the decoder reports it.
func ForbidTimestamps(raw []byte) error {
	var top map[string]json.RawMessage
	if json.Unmarshal(raw, &top) != nil {
		return nil
	}
	fields := []string{"create_time", "update_time"}
	for _, f := range fields {
		if _, ok := top[f]; ok {
			return errors.New("the property is forbidden:  " + f)
		}
	}
	for _, sub := range []string{"upstream", "plugins"} {
		var m map[string]json.RawMessage
		if json.Unmarshal(top[sub], &m) != nil {
			continue
		}
		for _, f := range fields {
			if _, ok := m[f]; ok {
				return errors.New("the property is forbidden:  " + sub + "." + f)
			}
		}
	}
	return nil
}

// decodeStrict runs the three passes of the strict decoders: syntax, the
// key walk (exact-case keys, required keys, empty strings, nodes) and
// encoding/json with DisallowUnknownFields for the types.
func decodeStrict(data []byte, v any) error {
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("invalid request body: %v", err)
	}
	t := reflect.TypeOf(v).Elem()
	if k := JSONKind(data); k != "object" {
		return &Error{Reason: "wrong type: expected object, got " + GotType(k)}
	}
	if err := checkKeys(data, t, nil); err != nil {
		return err
	}
	data, _ = integralInts(data, t)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return translate(err)
	}
	return nil
}

// translate turns encoding/json's errors into APISIX's wording.
func translate(err error) error {
	var (
		se *Error
		te *json.UnmarshalTypeError
		sx *json.SyntaxError
	)
	switch {
	case errors.As(err, &se):
		return se
	case errors.As(err, &te):
		var path []string
		if te.Field != "" {
			path = strings.Split(te.Field, ".")
		}
		return &Error{Path: path, Reason: typeReason(te)}
	case errors.As(err, &sx):
		return fmt.Errorf("invalid request body: %v", err)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if s, uerr := strconv.Unquote(name); uerr == nil {
			name = s
		}
		return &Error{Reason: "additional properties forbidden, found " + name}
	}
	return err
}

// typeReason is jsonschema's text for a type mismatch.
func typeReason(te *json.UnmarshalTypeError) string {
	switch te.Type {
	case idType, nodesType:
		// APISIX: both are anyOf schemas.
		return "object matches none of the required"
	}
	got, _, _ := strings.Cut(te.Value, " ") // "number 1.5" -> "number"
	return "wrong type: expected " + schemaType(te.Type) + ", got " + GotType(got)
}

// schemaType is the JSON schema type name of a Go type.
func schemaType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	default:
		return "object"
	}
}

// schema is what the key walk knows about one struct type.
type schema struct {
	fields map[string]reflect.Type // JSON key -> field type
	// required keys (jsonschema: `property "connect" is required`).
	required []string
	// empty maps keys whose value must not be "" to the reason (a string
	// field cannot tell "" from absent after decoding).
	empty map[string]string
	// unsupported keys are APISIX fields sluice does not implement.
	unsupported map[string]bool
}

var schemas = map[reflect.Type]*schema{}

func init() {
	tooShort := func(n int) string { return fmt.Sprintf("string too short, expected at least %d, got 0", n) }
	hostEmpty := patternReason(hostPattern, "")
	enumEmpty := "matches none of the enum values"
	add := func(t reflect.Type, s *schema) {
		s.fields = map[string]reflect.Type{}
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			s.fields[name] = f.Type
		}
		schemas[t] = s
	}
	add(reflect.TypeFor[Route](), &schema{
		empty: map[string]string{
			"uri": tooShort(1), "name": tooShort(1), "host": hostEmpty,
			"remote_addr": "object matches none of the required",
		},
		unsupported: map[string]bool{"filter_func": true, "script": true, "script_id": true, "service_protocol": true},
	})
	add(reflect.TypeFor[Service](), &schema{
		empty:       map[string]string{"name": tooShort(1)},
		unsupported: map[string]bool{"script": true},
	})
	add(reflect.TypeFor[Upstream](), &schema{
		empty: map[string]string{
			"name": tooShort(1), "scheme": enumEmpty, "pass_host": enumEmpty,
			"hash_on": enumEmpty, "upstream_host": hostEmpty,
		},
		unsupported: map[string]bool{"service_name": true, "discovery_type": true, "discovery_args": true},
	})
	add(reflect.TypeFor[Timeout](), &schema{required: []string{"connect", "send", "read"}})
	add(reflect.TypeFor[KeepalivePool](), &schema{})
	add(reflect.TypeFor[UpstreamTLS](), &schema{
		empty:       map[string]string{"client_cert": tooShort(minCertLen), "client_key": tooShort(minKeyLen)},
		unsupported: map[string]bool{"client_cert_id": true},
	})
}

// checkKeys walks the JSON object data against struct type t: every key
// must be a field's exact JSON name (encoding/json alone would accept
// "URI" for "uri"), required keys must be present, some strings must not
// be empty, and nodes must have a valid form. path locates data for
// errors. Values of the wrong JSON type are left to encoding/json.
func checkKeys(data []byte, t reflect.Type, path []string) error {
	s := schemas[t]
	if s == nil || JSONKind(data) != "object" {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil // duplicate-free syntax was checked; leave it to the decoder
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ft, ok := s.fields[k]
		if !ok {
			if s.unsupported[k] {
				return &Error{Path: appendPath(path, k), Reason: "not supported by sluice"}
			}
			return &Error{Path: path, Reason: "additional properties forbidden, found " + k}
		}
		v := obj[k]
		if reason, ok := s.empty[k]; ok && string(v) == `""` {
			return &Error{Path: appendPath(path, k), Reason: reason}
		}
		if ft == nodesType {
			if _, err := parseNodes(v); err != nil {
				return within(err, appendPath(path, k)...)
			}
			continue
		}
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if err := checkKeys(v, ft, appendPath(path, k)); err != nil {
			return err
		}
	}
	for _, k := range s.required {
		if _, ok := obj[k]; !ok {
			return &Error{Path: path, Reason: fmt.Sprintf("property %q is required", k)}
		}
	}
	return nil
}

// integralInts returns the JSON object data, which decodes into struct
// type t, with every integer field (and those of the nested objects that
// have a schema) whose value is an integral number written in another
// syntax (10.0, 1e2) rewritten as that integer (10, 100), so that
// encoding/json takes it: APISIX's jsonschema checks "integer" on the
// double lua-cjson decoded (JSONInteger). A fraction or a value out of
// range is left for encoding/json to refuse ("wrong type: expected
// integer, got number"). Other values, raw JSON fields (plugins, vars)
// among them, are left as sent. It returns data itself, and false, when
// nothing needs rewriting.
func integralInts(data []byte, t reflect.Type) ([]byte, bool) {
	s := schemas[t]
	if s == nil || JSONKind(data) != "object" {
		return data, false
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return data, false
	}
	changed := false
	for k, v := range obj {
		ft, ok := s.fields[k]
		if !ok {
			continue
		}
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			if n, ok := JSONInteger(v); ok && strconv.FormatInt(n, 10) != string(v) {
				obj[k], changed = strconv.AppendInt(nil, n, 10), true
			}
		case reflect.Struct:
			if nv, ok := integralInts(v, ft); ok {
				obj[k], changed = nv, true
			}
		}
	}
	if !changed {
		return data, false
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return data, false
	}
	return out, true
}

// appendPath returns path+k without sharing path's backing array.
func appendPath(path []string, k ...string) []string {
	return append(slices.Clip(path), k...)
}
