package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Error is a decoding or validation error in the wording of APISIX's
// jsonschema library, which the Admin API returns as its error_msg with
// status 400. Error() reads
//
//	invalid configuration: property "upstream" validation failed: property "timeout" validation failed: property "connect" validation failed: expected 0 to be greater than 0
//
// for Path ["upstream", "timeout", "connect"] and Reason "expected 0 to be
// greater than 0". Where APISIX itself answers without the prefix (`only
// one of host or hosts is allowed`, `missing key`, `invalid port 70000`),
// the decoders and Validate return a plain error with that text instead.
type Error struct {
	// Path names the properties from the outermost in; nil for the object
	// itself.
	Path []string
	// Reason is jsonschema's text ("string too short, expected at least 1,
	// got 0") or, for sluice's own rules, a sentence in the same style.
	Reason string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("invalid configuration: ")
	for _, p := range e.Path {
		b.WriteString("property ")
		b.WriteString(strconv.Quote(p))
		b.WriteString(" validation failed: ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// within prefixes path to err's Path if err is an *Error; other errors
// (APISIX's bare texts) are returned unchanged.
func within(err error, path ...string) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	return &Error{Path: append(slices.Clip(path), e.Path...), Reason: e.Reason}
}

// IDPattern is the syntax of a resource id (SPEC §4; APISIX id_schema: 1–64
// characters of [a-zA-Z0-9-_.], or an integer ≥ 1, which ID stores as its
// decimal text). ValidID is the same check without a regexp.
var IDPattern = regexp.MustCompile(`^[a-zA-Z0-9-_.]{1,64}$`)

// ValidID reports whether id matches IDPattern. It does not allocate.
func ValidID(id string) bool {
	if len(id) < 1 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// APISIX schema_def.lua patterns, as APISIX prints them in its messages.
const (
	hostPattern       = `^\*$|^\*?[0-9a-zA-Z-._\[\]:]+$`
	labelPattern      = `^\S+$`
	hashVarsPattern   = `^((uri|server_name|server_addr|request_uri|remote_port|remote_addr|query_string|host|hostname|mqtt_client_id)|arg_[0-9a-zA-z_-]+)$`
	hashHeaderPattern = `^[a-zA-Z0-9-_]+$`
)

var (
	hostRe       = regexp.MustCompile(hostPattern)
	labelRe      = regexp.MustCompile(labelPattern)
	hashVarsRe   = regexp.MustCompile(hashVarsPattern)
	hashHeaderRe = regexp.MustCompile(hashHeaderPattern)
)

// Limits from APISIX's schema_def.lua.
const (
	maxURILen   = 4096
	maxNameLen  = 256 // rule_name_def
	maxDescLen  = 256 // desc_def
	maxLabelLen = 256 // label_value_def
	minCertLen  = 128 // certificate_scheme
	minKeyLen   = 64  // private_key_schema
	maxPEMLen   = 64 * 1024
)

// Methods is APISIX's method enum (schema_def.lua method_schema).
var Methods = []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "PURGE"}

const (
	reasonEnum     = "matches none of the enum values"
	reasonNoneOf   = "object matches none of the required"
	reasonRequired = "property %q is required"
)

// Validate checks r against APISIX's route schema (schema_def.lua route and
// admin/routes.lua check_conf) plus sluice's own rules, and returns the
// first problem: an *Error, or a plain error where APISIX's text has no
// "invalid configuration" prefix. It does not look up upstream_id,
// service_id or plugin_config_id (router.Build does), nor plugin
// configurations (each plugin does) or vars expressions (router does).
//
// sluice is stricter than APISIX in two places: a uri (and each uris item)
// must start with "/" (APISIX only limits the length; radixtree never
// matches anything else), and "plugins" counts toward "plugins, upstream,
// upstream_id or service_id" only when it is not empty (APISIX accepts
// {"uri":"/a","plugins":{}}, a route that can only answer 503).
func (r *Route) Validate() error {
	if r.Host != "" && r.Hosts != nil {
		return errors.New("only one of host or hosts is allowed")
	}
	if r.RemoteAddr != "" && r.RemoteAddrs != nil {
		return errors.New("only one of remote_addr or remote_addrs is allowed")
	}
	if err := checkMeta(r.ID, r.Name, r.Desc, r.Labels); err != nil {
		return err
	}
	if r.URI != "" {
		if reason := uriReason(r.URI); reason != "" {
			return &Error{Path: []string{"uri"}, Reason: reason}
		}
	}
	if err := checkArray("uris", r.URIs, true, uriReason); err != nil {
		return err
	}
	if err := checkArray("methods", r.Methods, false, func(m string) string {
		if slices.Contains(Methods, m) {
			return ""
		}
		return reasonEnum
	}); err != nil {
		return err
	}
	if r.Host != "" {
		if reason := hostReason(r.Host); reason != "" {
			return &Error{Path: []string{"host"}, Reason: reason}
		}
	}
	if err := checkArray("hosts", r.Hosts, true, hostReason); err != nil {
		return err
	}
	if r.RemoteAddr != "" {
		if reason := addrReason(r.RemoteAddr); reason != "" {
			return &Error{Path: []string{"remote_addr"}, Reason: reason}
		}
	}
	if err := checkArray("remote_addrs", r.RemoteAddrs, true, addrReason); err != nil {
		return err
	}
	if err := checkTimeout(r.Timeout); err != nil {
		return err
	}
	if len(r.Vars) > 0 {
		if k := JSONKind(r.Vars); k != "array" && k != "null" {
			return &Error{Path: []string{"vars"}, Reason: "wrong type: expected array, got " + GotType(k)}
		}
	}
	if err := checkPlugins(r.Plugins); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		id   ID
	}{{"plugin_config_id", r.PluginConfigID}, {"service_id", r.ServiceID}, {"upstream_id", r.UpstreamID}} {
		if f.id != "" && !ValidID(string(f.id)) {
			return &Error{Path: []string{f.name}, Reason: reasonNoneOf}
		}
	}
	if r.Status != nil && *r.Status != 0 && *r.Status != 1 {
		return &Error{Path: []string{"status"}, Reason: reasonEnum}
	}
	if r.Upstream != nil {
		if err := r.Upstream.Validate(); err != nil {
			return within(err, "upstream")
		}
	}
	// allOf 1: oneOf {required uri} | {required uris}.
	switch {
	case r.URI == "" && r.URIs == nil:
		return &Error{Reason: "allOf 1 failed: value should match only one schema, but matches none"}
	case r.URI != "" && r.URIs != nil:
		return &Error{Reason: "allOf 1 failed: value should match only one schema, but matches both schemas 1 and 2"}
	}
	if len(r.Plugins) == 0 && r.Upstream == nil && r.UpstreamID == "" && r.ServiceID == "" {
		return &Error{Reason: reasonNoneOf + `: ["plugins"] or ["upstream"] or ["upstream_id"] or ["service_id"]`}
	}
	return nil
}

// Validate checks s against APISIX's service schema (schema_def.lua
// service) and its upstream as Upstream.Validate does; see Route.Validate
// for the error forms.
func (s *Service) Validate() error {
	if err := checkMeta(s.ID, s.Name, s.Desc, s.Labels); err != nil {
		return err
	}
	if err := checkArray("hosts", s.Hosts, true, hostReason); err != nil {
		return err
	}
	if err := checkPlugins(s.Plugins); err != nil {
		return err
	}
	if s.UpstreamID != "" && !ValidID(string(s.UpstreamID)) {
		return &Error{Path: []string{"upstream_id"}, Reason: reasonNoneOf}
	}
	if s.Upstream != nil {
		if err := s.Upstream.Validate(); err != nil {
			return within(err, "upstream")
		}
	}
	return nil
}

// Validate checks u against APISIX's upstream schema (schema_def.lua
// upstream_schema) and check_upstream_conf (apisix/upstream.lua), within
// what sluice supports:
//
//   - type: APISIX accepts any string (a custom balancer module); sluice
//     has roundrobin (default), chash, least_conn and ewma;
//   - scheme: http (default) and https; APISIX's other schemes (grpc,
//     grpcs, tcp, tls, udp, kafka) are named as unsupported;
//   - nodes are required (service discovery is not supported) but may be
//     empty, as in APISIX: such an upstream answers 502;
//   - checks: only its outline (an object with "active", optionally
//     "passive"); the health checker validates the rest.
//
// The errors are *Error values, or APISIX's bare texts: `invalid port N`,
// "`upstream_host` can't be empty when `pass_host` is `rewrite`" and
// `missing key`.
func (u *Upstream) Validate() error {
	if err := checkMeta(u.ID, u.Name, u.Desc, u.Labels); err != nil {
		return err
	}
	if u.Nodes == nil {
		return &Error{Reason: fmt.Sprintf(reasonRequired, "nodes")}
	}
	if err := checkNodes(u.Nodes, u.nodesMapForm()); err != nil {
		return err
	}
	if u.Retries != nil && *u.Retries < 0 {
		return &Error{Path: []string{"retries"}, Reason: atLeast(float64(*u.Retries), 0)}
	}
	if u.RetryTimeout < 0 {
		return &Error{Path: []string{"retry_timeout"}, Reason: atLeast(u.RetryTimeout, 0)}
	}
	if err := checkTimeout(u.Timeout); err != nil {
		return err
	}
	if err := checkTLS(u.TLS); err != nil {
		return err
	}
	if kp := u.KeepalivePool; kp != nil {
		switch {
		case kp.Size < 1:
			return &Error{Path: []string{"keepalive_pool", "size"}, Reason: atLeast(float64(kp.Size), 1)}
		case kp.IdleTimeout < 0:
			return &Error{Path: []string{"keepalive_pool", "idle_timeout"}, Reason: atLeast(kp.IdleTimeout, 0)}
		case kp.Requests < 1:
			return &Error{Path: []string{"keepalive_pool", "requests"}, Reason: atLeast(float64(kp.Requests), 1)}
		}
	}
	switch u.Type {
	case "", "roundrobin", "chash", "least_conn", "ewma":
	default:
		return &Error{Path: []string{"type"}, Reason: fmt.Sprintf("type %q is not supported by sluice", u.Type)}
	}
	if err := checkChecks(u.Checks); err != nil {
		return err
	}
	switch u.HashOn {
	case "", "vars", "header", "cookie", "consumer", "vars_combinations":
	default:
		return &Error{Path: []string{"hash_on"}, Reason: reasonEnum}
	}
	switch u.Scheme {
	case "", "http", "https":
	case "grpc", "grpcs", "tcp", "tls", "udp", "kafka":
		return &Error{Path: []string{"scheme"}, Reason: fmt.Sprintf("scheme %q is not supported by sluice", u.Scheme)}
	default:
		return &Error{Path: []string{"scheme"}, Reason: reasonEnum}
	}
	switch u.PassHost {
	case "", "pass", "node", "rewrite":
	default:
		return &Error{Path: []string{"pass_host"}, Reason: reasonEnum}
	}
	if u.UpstreamHost != "" {
		if reason := hostReason(u.UpstreamHost); reason != "" {
			return &Error{Path: []string{"upstream_host"}, Reason: reason}
		}
	}
	// apisix/upstream.lua check_upstream_conf, after the schema.
	if u.PassHost == "rewrite" && u.UpstreamHost == "" {
		return errors.New("`upstream_host` can't be empty when `pass_host` is `rewrite`")
	}
	if u.Type == "chash" {
		if u.HashOn != "consumer" && u.Key == "" {
			return errors.New("missing key")
		}
		var re *regexp.Regexp
		var pat string
		switch u.HashOn {
		case "", "vars":
			re, pat = hashVarsRe, hashVarsPattern
		case "header", "cookie":
			re, pat = hashHeaderRe, hashHeaderPattern
		}
		if re != nil && !re.MatchString(u.Key) {
			return &Error{Path: []string{"key"}, Reason: patternReason(pat, u.Key)}
		}
	}
	return nil
}

// checkMeta checks the metadata every resource has.
func checkMeta(id ID, name, desc string, labels map[string]string) error {
	if id != "" && !ValidID(string(id)) {
		return &Error{Path: []string{"id"}, Reason: reasonNoneOf}
	}
	if n := utf8.RuneCountInString(name); n > maxNameLen {
		return &Error{Path: []string{"name"}, Reason: tooLong(maxNameLen, n)}
	}
	if n := utf8.RuneCountInString(desc); n > maxDescLen {
		return &Error{Path: []string{"desc"}, Reason: tooLong(maxDescLen, n)}
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := labels[k]
		var reason string
		switch n := utf8.RuneCountInString(v); {
		case n < 1:
			reason = tooShort(1, n)
		case n > maxLabelLen:
			reason = tooLong(maxLabelLen, n)
		case !labelRe.MatchString(v):
			reason = patternReason(labelPattern, v)
		}
		if reason != "" {
			return &Error{Path: []string{"labels"}, Reason: fmt.Sprintf(`failed to validate %s (matching ".*"): %s`, k, reason)}
		}
	}
	return nil
}

// checkArray checks a string array property: minItems 1 when nonEmpty
// (nil means absent), each item with itemReason, and uniqueItems.
func checkArray(name string, items []string, nonEmpty bool, itemReason func(string) string) error {
	if items == nil {
		return nil
	}
	if nonEmpty && len(items) == 0 {
		return &Error{Path: []string{name}, Reason: "expect array to have at least 1 items"}
	}
	for i, it := range items {
		if reason := itemReason(it); reason != "" {
			return &Error{Path: []string{name}, Reason: fmt.Sprintf("failed to validate item %d: %s", i+1, reason)}
		}
	}
	first := make(map[string]int, len(items)) // not a double loop: a 1 MiB body can hold 250k items
	for j, it := range items {
		if i, dup := first[it]; dup {
			return &Error{Path: []string{name}, Reason: fmt.Sprintf("expected unique items but items %d and %d are equal", i+1, j+1)}
		}
		first[it] = j
	}
	return nil
}

func uriReason(u string) string {
	switch n := utf8.RuneCountInString(u); {
	case n < 1:
		return tooShort(1, n)
	case n > maxURILen:
		return tooLong(maxURILen, n)
	case u[0] != '/':
		return `must start with "/" (a sluice rule: APISIX only limits the length)`
	}
	return ""
}

func hostReason(h string) string {
	if hostRe.MatchString(h) {
		return ""
	}
	return patternReason(hostPattern, h)
}

// addrReason checks an IP address or CIDR (APISIX ip_def); APISIX's text
// for a mismatch is that of its anyOf.
func addrReason(a string) string {
	if _, err := netip.ParseAddr(a); err == nil {
		return ""
	}
	if _, err := netip.ParsePrefix(a); err == nil {
		return ""
	}
	return reasonNoneOf
}

func checkTimeout(t *Timeout) error {
	if t == nil {
		return nil
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"connect", t.Connect}, {"send", t.Send}, {"read", t.Read}} {
		if !(f.v > 0) {
			return &Error{Path: []string{"timeout", f.name}, Reason: fmt.Sprintf("expected %s to be greater than 0", fmtNum(f.v))}
		}
	}
	return nil
}

// checkPlugins checks that each plugin configuration is a JSON object; the
// plugin checks the rest.
func checkPlugins(plugins map[string]json.RawMessage) error {
	names := make([]string, 0, len(plugins))
	for name := range plugins {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if k := JSONKind(plugins[name]); k != "object" {
			return &Error{Path: []string{"plugins", name}, Reason: "wrong type: expected object, got " + GotType(k)}
		}
	}
	return nil
}

// checkNodes checks decoded or constructed nodes. Messages follow the form
// the nodes were sent in.
func checkNodes(nodes Nodes, mapForm bool) error {
	for i, n := range nodes {
		var field, reason string
		switch {
		case n.Host == "" || !hostRe.MatchString(n.Host):
			field, reason = "host", patternReason(hostPattern, n.Host)
		case n.Port < 0:
			field, reason = "port", atLeast(float64(n.Port), 1)
		case n.Port > 65535:
			field, reason = "port", fmt.Sprintf("expected %d to be at most 65535", n.Port)
		case n.Weight < 0:
			field, reason = "weight", atLeast(float64(n.Weight), 0)
		default:
			continue
		}
		if mapForm {
			if field == "port" {
				return fmt.Errorf("invalid port %d", n.Port)
			}
			return &Error{Path: []string{"nodes"}, Reason: fmt.Sprintf(`failed to validate %s (matching ".*"): %s`, nodeKey(n), reason)}
		}
		return &Error{Path: []string{"nodes"}, Reason: fmt.Sprintf("failed to validate item %d: property %q validation failed: %s", i+1, field, reason)}
	}
	return nil
}

// nodeKey is the map-form key of n.
func nodeKey(n Node) string {
	h := n.Host
	if strings.IndexByte(h, ':') >= 0 {
		h = "[" + h + "]"
	}
	if n.Port != 0 {
		h += ":" + strconv.Itoa(n.Port)
	}
	return h
}

func checkTLS(t *UpstreamTLS) error {
	if t == nil {
		return nil
	}
	for _, f := range []struct {
		name string
		v    string
		min  int
	}{{"client_cert", t.ClientCert, minCertLen}, {"client_key", t.ClientKey, minKeyLen}} {
		if f.v == "" {
			continue
		}
		switch n := utf8.RuneCountInString(f.v); {
		case n < f.min:
			return &Error{Path: []string{"tls", f.name}, Reason: tooShort(f.min, n)}
		case n > maxPEMLen:
			return &Error{Path: []string{"tls", f.name}, Reason: tooLong(maxPEMLen, n)}
		}
	}
	switch {
	case t.ClientCert != "" && t.ClientKey == "":
		return &Error{Path: []string{"tls"}, Reason: `failed to validate dependent schema for "client_cert": property "client_key" is required`}
	case t.ClientKey != "" && t.ClientCert == "":
		return &Error{Path: []string{"tls"}, Reason: `failed to validate dependent schema for "client_key": property "client_cert" is required`}
	}
	return nil
}

// checkChecks checks the outline of APISIX's health_checker schema.
func checkChecks(raw json.RawMessage) error {
	k := JSONKind(raw)
	if k == "" || k == "null" {
		return nil
	}
	if k != "object" {
		return &Error{Path: []string{"checks"}, Reason: "wrong type: expected object, got " + GotType(k)}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return &Error{Path: []string{"checks"}, Reason: err.Error()}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k != "active" && k != "passive" {
			return &Error{Path: []string{"checks"}, Reason: "additional properties forbidden, found " + k}
		}
		if kind := JSONKind(m[k]); kind != "object" {
			return &Error{Path: []string{"checks", k}, Reason: "wrong type: expected object, got " + GotType(kind)}
		}
	}
	if _, ok := m["active"]; !ok {
		return &Error{Path: []string{"checks"}, Reason: reasonNoneOf + `: ["active"] or ["active","passive"]`}
	}
	return nil
}

func tooShort(min, got int) string {
	return fmt.Sprintf("string too short, expected at least %d, got %d", min, got)
}

func tooLong(max, got int) string {
	return fmt.Sprintf("string too long, expected at most %d, got %d", max, got)
}

func atLeast(v, min float64) string {
	return fmt.Sprintf("expected %s to be at least %s", fmtNum(v), fmtNum(min))
}

// patternReason is jsonschema's text, with Lua's %q quoting (as Go's).
func patternReason(pattern, v string) string {
	return fmt.Sprintf("failed to match pattern %s with %s", strconv.Quote(pattern), strconv.Quote(v))
}

func fmtNum(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64)
}
