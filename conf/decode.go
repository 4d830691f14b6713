package conf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Error is a problem in config.yaml. Load's and Parse's errors about the
// file's content and the admin key are *Error values (joined with
// errors.Join when there are several), so a caller can find the line with
// errors.As; a file that cannot be read gives the *fs.PathError, wrapped.
type Error struct {
	File string // the path given to Load; "" for built-in defaults
	Line int    // 1-based; 0 when the problem has no single line
	Msg  string // names the key path, e.g. `unknown key "apisix.node_lisen"`
}

// Error formats e as "conf: FILE:LINE: MSG".
func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("conf: %s:%d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return fmt.Sprintf("conf: %s: %s", e.File, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("conf: line %d: %s", e.Line, e.Msg)
	}
	return "conf: " + e.Msg
}

const (
	maxErrors  = 20    // reported per file; the rest are dropped
	maxAliases = 10000 // alias resolutions per file (defuses alias bombs)
)

// decoder walks the yaml.v3 node tree of one file into a Config. It records
// errors instead of stopping at the first, so one run names every bad key.
type decoder struct {
	file    string
	c       *Config
	errs    []error
	aliases int

	enableAdmin     *yaml.Node // where enable_admin was first written
	enableAdminPath string
	keyRequiredNode *yaml.Node // deployment.admin.admin_key_required, if written
	keyNodes        []*yaml.Node
	allowAdminNode  *yaml.Node
	dpProvider      *yaml.Node // role_data_plane.config_provider
	roleNode        *yaml.Node
	dataPlaneNode   *yaml.Node     // role_data_plane section
	sslEnable       *yaml.Node     // apisix.ssl.enable: false
	lines           map[string]int // key path of a listen address → its line
}

// decode parses data (the contents of file) into a Config with defaults
// applied and every check that needs no file system; the admin-key policy is
// left to the caller. Errors are *Error values.
func decode(data []byte, file string) (c *Config, err error) {
	d := &decoder{file: file, c: Default(), lines: map[string]int{}}
	d.c.Path = file
	root, err := d.parse(data)
	if err != nil {
		return nil, err
	}
	if root != nil {
		d.top(root)
	}
	if len(d.errs) == 0 {
		d.finish()
	}
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	return d.c, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parse reads the single YAML document in data; nil for an empty file.
func (d *decoder) parse(data []byte) (root *yaml.Node, err error) {
	defer func() {
		// yaml.v3 has panicked on hostile input before; a config file must
		// never crash the gateway.
		if r := recover(); r != nil {
			root, err = nil, &Error{File: d.file, Msg: fmt.Sprintf("invalid YAML: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, d.yamlErr(err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, d.yamlErr(err)
		}
		return nil, &Error{File: d.file, Line: more.Line, Msg: "a second YAML document (---); config.yaml holds one"}
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return nil, nil
}

func (d *decoder) yamlErr(err error) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: d.file, Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return &Error{File: d.file, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// failf records an error at n's line.
func (d *decoder) failf(n *yaml.Node, format string, args ...any) {
	if len(d.errs) >= maxErrors {
		return
	}
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// warnf adds a warning at n's line to the Config.
func (d *decoder) warnf(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	e := Error{File: d.file, Line: line, Msg: fmt.Sprintf(format, args...)}
	d.c.Warnings = append(d.c.Warnings, e.Error())
}

func (d *decoder) full() bool { return len(d.errs) >= maxErrors }

// resolve follows aliases.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		d.aliases++
		if d.aliases > maxAliases {
			d.bomb(n)
			return nil
		}
		n = n.Alias
	}
	return n
}

// bomb reports, once, a file whose aliases or merge keys expand too far,
// and stops all further alias resolution.
func (d *decoder) bomb(n *yaml.Node) {
	if d.aliases <= maxAliases+1 {
		d.failf(n, "too many YAML aliases or merge keys")
	}
	d.aliases = maxAliases + 2
}

// isNull reports whether n is an explicit or implicit null (`key:`), which
// keeps the default, as APISIX's merge with config-default.yaml does.
func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names what n is, for "want X, got Y"; scalars are quoted.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// pair is one key: value of a mapping.
type pair struct {
	key  string
	k, v *yaml.Node
}

// each calls fn for every key of mapping n, after YAML merge keys (<<) are
// applied. A null n is an empty mapping; a duplicate key is an error.
func (d *decoder) each(n *yaml.Node, path string, fn func(p pair)) {
	n = d.resolve(n)
	if isNull(n) || d.full() {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.failf(n, "%s: want a mapping, got %s", nameOf(path), describe(n))
		return
	}
	for _, p := range d.pairs(n, path, 0) {
		if d.full() {
			return
		}
		fn(p)
	}
}

func nameOf(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

// pairs lists n's keys: its own first, then those merged in by "<<" that it
// does not set itself (YAML merge-key semantics).
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []pair {
	var own, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := d.resolve(n.Content[i]), n.Content[i+1]
		if k == nil {
			return nil
		}
		if k.Kind != yaml.ScalarNode {
			d.failf(k, "%s: want a plain key, got %s", nameOf(path), describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			if depth > 16 {
				d.bomb(k)
				return nil
			}
			merged = append(merged, d.merge(v, path, depth)...)
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			d.failf(k, "duplicate key %q (first at line %d)", join(path, k.Value), prev.Line)
			continue
		}
		seen[k.Value] = k
		own = append(own, pair{k.Value, k, v})
	}
	for _, p := range merged {
		if _, dup := seen[p.key]; !dup {
			seen[p.key] = p.k
			own = append(own, p)
		}
	}
	return own
}

// merge returns the pairs a "<<" value brings: one mapping or a list of them
// (the first in the list wins).
func (d *decoder) merge(v *yaml.Node, path string, depth int) []pair {
	v = d.resolve(v)
	if v == nil {
		return nil
	}
	switch v.Kind {
	case yaml.MappingNode:
		return d.pairs(v, path, depth+1)
	case yaml.SequenceNode:
		var out []pair
		for _, m := range v.Content {
			m = d.resolve(m)
			if m == nil || m.Kind != yaml.MappingNode {
				d.failf(v, "%s: merge key (<<) wants mappings", nameOf(path))
				return nil
			}
			out = append(out, d.pairs(m, path, depth+1)...)
		}
		return out
	}
	d.failf(v, "%s: merge key (<<) wants a mapping, got %s", nameOf(path), describe(v))
	return nil
}

// scalar returns n's text after ${{VAR}} expansion; ok is false (and an
// error recorded) when n is not a scalar.
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	n = d.resolve(n)
	if n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		d.failf(n, "%s: want %s, got %s", path, want, describe(n))
		return "", false
	}
	s, err := expandEnv(n.Value)
	if err != nil {
		d.failf(n, "%s: %v", path, err)
		return "", false
	}
	return s, true
}

// str sets *dst from a string value; null keeps the default.
func (d *decoder) str(n *yaml.Node, path string, dst *string) bool {
	if isNull(d.resolve(n)) {
		return false
	}
	s, ok := d.scalar(n, path, "a string")
	if ok {
		*dst = s
	}
	return ok
}

// integer sets *dst from an integer value (decimal; a quoted number is
// accepted, as nginx's template would render it).
func (d *decoder) integer(n *yaml.Node, path string, dst *int) bool {
	if isNull(d.resolve(n)) {
		return false
	}
	s, ok := d.scalar(n, path, "an integer")
	if !ok {
		return false
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		d.failf(n, "%s: want an integer, got %q", path, s)
		return false
	}
	*dst = v
	return true
}

// boolean sets *dst from true or false (YAML 1.1's yes/no/on/off are refused:
// for admin_key_required a guess is worse than an error).
func (d *decoder) boolean(n *yaml.Node, path string, dst *bool) bool {
	if isNull(d.resolve(n)) {
		return false
	}
	s, ok := d.scalar(n, path, "true or false")
	if !ok {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		*dst = true
	case "false":
		*dst = false
	default:
		d.failf(n, "%s: want true or false, got %q", path, s)
		return false
	}
	return true
}

// port sets *dst from an integer in 1…65535.
func (d *decoder) port(n *yaml.Node, path string, dst *int) bool {
	var p int
	if !d.integer(n, path, &p) {
		return false
	}
	if err := checkPort(p); err != nil {
		d.failf(n, "%s: %v", path, err)
		return false
	}
	*dst = p
	return true
}

// parsed sets *dst from a scalar run through parse; null keeps the default.
func parsed[T any](d *decoder, n *yaml.Node, path, want string, parse func(string) (T, error), dst *T) bool {
	if isNull(d.resolve(n)) {
		return false
	}
	s, ok := d.scalar(n, path, want)
	if !ok {
		return false
	}
	v, err := parse(s)
	if err != nil {
		d.failf(n, "%s: %v", path, err)
		return false
	}
	*dst = v
	return true
}

// list calls fn for every item of sequence n; ok is false if n is not a
// list. null is "keep the default": fn is not called and ok is false.
func (d *decoder) list(n *yaml.Node, path string, fn func(i int, item *yaml.Node)) bool {
	n = d.resolve(n)
	if isNull(n) {
		return false
	}
	if n.Kind != yaml.SequenceNode {
		d.failf(n, "%s: want a list, got %s", path, describe(n))
		return false
	}
	for i, item := range n.Content {
		if d.full() {
			return false
		}
		fn(i, item)
	}
	return true
}

// other handles a key the section does not implement: an APISIX key that
// sluice knows but ignores is a warning; a key that moved is an error with a
// hint; anything else is an error.
func (d *decoder) other(p pair, path string, ignored map[string]string) {
	full := join(path, p.key)
	if hint, ok := moved[full]; ok {
		d.failf(p.k, "unknown key %q (%s)", full, hint)
		return
	}
	if note, ok := ignored[p.key]; ok {
		if note != "" {
			note = "; " + note
		}
		d.warnf(p.k, "%s: APISIX key not implemented by sluice, ignored%s", full, note)
		return
	}
	d.failf(p.k, "unknown key %q", full)
}

// top decodes the document's top level.
func (d *decoder) top(n *yaml.Node) {
	d.each(n, "", func(p pair) {
		switch p.key {
		case "apisix":
			d.apisix(p.v, "apisix")
		case "deployment":
			d.deployment(p.v, "deployment")
		case "nginx_config":
			d.nginx(p.v, "nginx_config")
		case "plugin_attr":
			d.pluginAttr(p.v, "plugin_attr")
		default:
			d.other(p, "", topIgnored)
		}
	})
}

func (d *decoder) apisix(n *yaml.Node, path string) {
	d.each(n, path, func(p pair) {
		pp := join(path, p.key)
		switch p.key {
		case "node_listen":
			if l, ok := d.listen(p.v, pp, true); ok {
				d.c.Apisix.NodeListen = l
			}
		case "enable_admin":
			d.enableAdminAt(p, pp)
		case "ssl":
			d.ssl(p.v, pp)
		default:
			d.other(p, path, apisixIgnored)
		}
	})
}

func (d *decoder) ssl(n *yaml.Node, path string) {
	d.each(n, path, func(p pair) {
		pp := join(path, p.key)
		switch p.key {
		case "listen":
			if l, ok := d.listen(p.v, pp, false); ok {
				d.c.Apisix.SSL.Listen = l
			}
		case "ssl_trusted_certificate":
			d.str(p.v, pp, &d.c.Apisix.SSL.SSLTrustedCertificate)
		case "enable":
			var on bool
			if d.boolean(p.v, pp, &on) && !on {
				d.sslEnable = p.k
			}
		default:
			d.other(p, path, sslIgnored)
		}
	})
}

// listen decodes node_listen or ssl.listen: a port, a list of ports, or a
// list of {ip, port} (APISIX also allows enable_http2/enable_http3 there).
func (d *decoder) listen(n *yaml.Node, path string, needOne bool) ([]Addr, bool) {
	n = d.resolve(n)
	if isNull(n) {
		return nil, false
	}
	if n.Kind == yaml.ScalarNode {
		a := Addr{IP: "0.0.0.0"}
		if !d.port(n, path, &a.Port) {
			return nil, false
		}
		d.lines[index(path, 0)] = n.Line
		return []Addr{a}, true
	}
	var out []Addr
	ok := d.list(n, path, func(i int, item *yaml.Node) {
		ip := index(path, i)
		item = d.resolve(item)
		if item == nil {
			return
		}
		a := Addr{IP: "0.0.0.0"}
		before := len(d.errs)
		switch item.Kind {
		case yaml.ScalarNode:
			if !d.port(item, ip, &a.Port) {
				if len(d.errs) == before {
					d.failf(item, "%s: want a port or {ip, port}, got nothing", ip)
				}
				return
			}
		case yaml.MappingNode:
			d.each(item, ip, func(p pair) {
				pp := join(ip, p.key)
				switch p.key {
				case "ip":
					parsed(d, p.v, pp, "an IP address", parseIP, &a.IP)
				case "port":
					d.port(p.v, pp, &a.Port)
				default:
					d.other(p, ip, listenIgnored)
				}
			})
			if len(d.errs) > before {
				return
			}
			if a.Port == 0 {
				d.failf(item, "%s: port is required", ip)
				return
			}
		default:
			d.failf(item, "%s: want a port or {ip, port}, got %s", ip, describe(item))
			return
		}
		d.lines[index(path, len(out))] = item.Line
		out = append(out, a)
	})
	if ok && len(out) == 0 && needOne && len(n.Content) == 0 {
		d.failf(n, "%s: want at least one address", path)
		return nil, false
	}
	return out, ok
}

// addr decodes the {ip, port} mapping of kv over the default *dst.
func (d *decoder) addr(kv pair, path string, dst *Addr) {
	a := *dst
	d.each(kv.v, path, func(p pair) {
		pp := join(path, p.key)
		switch p.key {
		case "ip":
			parsed(d, p.v, pp, "an IP address", parseIP, &a.IP)
		case "port":
			d.port(p.v, pp, &a.Port)
		default:
			d.other(p, path, nil)
		}
	})
	d.lines[path] = kv.k.Line
	*dst = a
}

// enableAdminAt decodes apisix.enable_admin or its alias
// deployment.admin.enable_admin (where the AI guide puts it).
func (d *decoder) enableAdminAt(p pair, path string) {
	v := d.c.Apisix.EnableAdmin
	if !d.boolean(p.v, path, &v) {
		return
	}
	if d.enableAdmin != nil && v != d.c.Apisix.EnableAdmin {
		d.failf(p.k, "%s: %v contradicts %s: %v at line %d", path, v, d.enableAdminPath, d.c.Apisix.EnableAdmin, d.enableAdmin.Line)
		return
	}
	d.enableAdmin, d.enableAdminPath = p.k, path
	d.c.Apisix.EnableAdmin = v
}

func (d *decoder) deployment(n *yaml.Node, path string) {
	dp := &d.c.Deployment
	d.each(n, path, func(p pair) {
		pp := join(path, p.key)
		switch p.key {
		case "role":
			var role string
			if !d.str(p.v, pp, &role) {
				return
			}
			switch role {
			case RoleTraditional, RoleDataPlane:
				dp.Role, d.roleNode = role, p.v
			case "control_plane", "standalone":
				d.failf(p.v, "%s: %s is not supported by sluice (use traditional; for APISIX standalone mode, role_traditional.config_provider: yaml)", pp, role)
			default:
				d.failf(p.v, "%s: want traditional, got %q", pp, role)
			}
		case "role_traditional":
			d.each(p.v, pp, func(q pair) {
				qp := join(pp, q.key)
				if q.key != "config_provider" {
					d.other(q, pp, nil)
					return
				}
				var s string
				if !d.str(q.v, qp, &s) {
					return
				}
				switch s {
				case ProviderEmbedded, ProviderEtcd, ProviderYAML:
					dp.ConfigProvider = s
				default:
					d.failf(q.v, "%s: want embedded, etcd or yaml, got %q", qp, s)
				}
			})
		case "role_data_plane":
			d.dataPlaneNode = p.k
			d.each(p.v, pp, func(q pair) {
				qp := join(pp, q.key)
				if q.key != "config_provider" {
					d.other(q, pp, nil)
					return
				}
				var s string
				if d.str(q.v, qp, &s) {
					if s != ProviderYAML {
						d.failf(q.v, "%s: %q is not supported by sluice; a data_plane reads yaml (APISIX standalone mode)", qp, s)
						return
					}
					d.dpProvider = q.v
				}
			})
		case "admin":
			d.admin(p.v, pp)
		case "embedded":
			d.each(p.v, pp, func(q pair) {
				if q.key != "path" {
					d.other(q, pp, nil)
					return
				}
				qp := join(pp, q.key)
				if d.str(q.v, qp, &dp.Embedded.Path) && strings.TrimSpace(dp.Embedded.Path) == "" {
					d.failf(q.v, "%s: want a directory, got %q", qp, dp.Embedded.Path)
				}
			})
		case "etcd":
			d.etcd(p.v, pp)
		default:
			d.other(p, path, deploymentIgnored)
		}
	})
}

func (d *decoder) admin(n *yaml.Node, path string) {
	ad := &d.c.Deployment.Admin
	d.each(n, path, func(p pair) {
		pp := join(path, p.key)
		switch p.key {
		case "admin_key_required":
			// APISIX turns key checking off only for a YAML boolean false
			// (a quoted "false" is a string, and keeps keys required):
			// sluice refuses the string rather than read it either way
			if v := d.resolve(p.v); v.Kind == yaml.ScalarNode && v.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
				d.failf(p.v, "%s: want an unquoted true or false, got the string %q", pp, v.Value)
				break
			}
			if d.boolean(p.v, pp, &ad.AdminKeyRequired) {
				d.keyRequiredNode = p.k
			}
		case "admin_key":
			d.adminKeys(p.v, pp)
		case "allow_admin":
			var cidrs []string
			ok := d.list(p.v, pp, func(i int, item *yaml.Node) {
				if isNull(d.resolve(item)) {
					d.failf(item, "%s: want a CIDR, got nothing", index(pp, i))
					return
				}
				s, ok := d.scalar(item, index(pp, i), "a CIDR")
				if !ok {
					return
				}
				pfx, err := parseCIDR(s)
				if err != nil {
					d.failf(item, "%s: %v", index(pp, i), err)
					return
				}
				d.lines[index(pp, len(cidrs))] = item.Line
				cidrs = append(cidrs, pfx.String())
			})
			if !ok {
				return
			}
			if v := d.resolve(p.v); v != nil && len(v.Content) == 0 {
				// APISIX renders an empty list as "allow all"; that is never
				// what a typo-free file means.
				d.failf(p.v, "%s: empty list; list the CIDRs allowed to reach the Admin API (0.0.0.0/0 and ::/0 allow everyone)", pp)
				return
			}
			ad.AllowAdmin, d.allowAdminNode = cidrs, p.k
		case "admin_listen":
			d.addr(p, pp, &ad.AdminListen)
		case "enable_admin":
			d.enableAdminAt(p, pp)
		case "https_admin":
			var on bool
			if d.boolean(p.v, pp, &on) && on {
				d.failf(p.v, "%s: HTTPS for the Admin API is not implemented by sluice; keep admin_listen on loopback or put a TLS proxy in front (the admin key would cross the network in clear)", pp)
			}
		default:
			d.other(p, path, adminIgnored)
		}
	})
}

// adminKeys decodes deployment.admin.admin_key: a list of {name, key, role}.
// The key checks (example keys, length) run in finish, with the role known.
func (d *decoder) adminKeys(n *yaml.Node, path string) {
	var keys []AdminKey
	var nodes []*yaml.Node
	ok := d.list(n, path, func(i int, item *yaml.Node) {
		ip := index(path, i)
		item = d.resolve(item)
		if item == nil {
			return
		}
		if item.Kind != yaml.MappingNode {
			d.failf(item, "%s: want {name, key, role}, got %s", ip, describe(item))
			return
		}
		var k AdminKey
		keyNode := item
		d.each(item, ip, func(p pair) {
			pp := join(ip, p.key)
			switch p.key {
			case "name":
				d.str(p.v, pp, &k.Name)
			case "key":
				if v := d.resolve(p.v); v != nil && v.Kind != yaml.ScalarNode {
					// never describe a key's value
					d.failf(p.v, "%s: want a string", pp)
					return
				}
				d.str(p.v, pp, &k.Key)
				keyNode = p.k
			case "role":
				if d.str(p.v, pp, &k.Role) && k.Role != KeyRoleAdmin && k.Role != KeyRoleViewer {
					d.failf(p.v, "%s: want admin or viewer, got %q", pp, k.Role)
				}
			default:
				d.other(p, ip, nil)
			}
		})
		if k.Role == "" {
			k.Role = KeyRoleAdmin // APISIX: only viewer is restricted
		}
		keys = append(keys, k)
		nodes = append(nodes, keyNode)
	})
	if ok {
		d.c.Deployment.Admin.AdminKey, d.keyNodes = keys, nodes
	}
}

func (d *decoder) etcd(n *yaml.Node, path string) {
	e := &d.c.Deployment.Etcd
	d.each(n, path, func(p pair) {
		pp := join(path, p.key)
		switch p.key {
		case "host":
			v := d.resolve(p.v)
			if v != nil && v.Kind == yaml.ScalarNode && !isNull(v) {
				var h string
				if d.str(v, pp, &h) {
					if err := checkEtcdHost(h); err != nil {
						d.failf(v, "%s: %v", pp, err)
						return
					}
					e.Host = []string{h}
				}
				return
			}
			var hosts []string
			ok := d.list(v, pp, func(i int, item *yaml.Node) {
				var h string
				if isNull(d.resolve(item)) {
					d.failf(item, "%s: want a URL such as http://127.0.0.1:2379, got nothing", index(pp, i))
					return
				}
				if !d.str(item, index(pp, i), &h) {
					return
				}
				if err := checkEtcdHost(h); err != nil {
					d.failf(item, "%s: %v", index(pp, i), err)
					return
				}
				hosts = append(hosts, h)
			})
			if ok && len(v.Content) == 0 {
				d.failf(v, "%s: want at least one URL", pp)
				return
			}
			if ok {
				e.Host = hosts
			}
		case "prefix":
			if d.str(p.v, pp, &e.Prefix) && !strings.HasPrefix(e.Prefix, "/") {
				d.failf(p.v, "%s: want a path starting with /, got %q", pp, e.Prefix)
			}
		case "timeout":
			var s int
			if !d.integer(p.v, pp, &s) {
				return
			}
			if s < 1 || s > 3600 {
				d.failf(p.v, "%s: want seconds from 1 to 3600, got %d", pp, s)
				return
			}
			e.Timeout = time.Duration(s) * time.Second
		default:
			d.other(p, path, etcdIgnored)
		}
	})
}

func (d *decoder) nginx(n *yaml.Node, path string) {
	d.each(n, path, func(p pair) {
		pp := join(path, p.key)
		switch p.key {
		case "http":
			d.http(p.v, pp)
		case "worker_processes":
			parsed(d, p.v, pp, "auto or a number", parseWorkers, &d.c.WorkerProcesses)
		case "busy_poll":
			parsed(d, p.v, pp, "a duration", parseBusyPoll, &d.c.BusyPoll)
		default:
			d.other(p, path, nginxIgnored)
		}
	})
}

func (d *decoder) http(n *yaml.Node, path string) {
	h := &d.c.HTTP
	const dur = "a duration"
	d.each(n, path, func(p pair) {
		pp := join(path, p.key)
		switch p.key {
		case "client_header_timeout":
			parsed(d, p.v, pp, dur, parseDuration, &h.ClientHeaderTimeout)
		case "client_body_timeout":
			parsed(d, p.v, pp, dur, parseDuration, &h.ClientBodyTimeout)
		case "send_timeout":
			parsed(d, p.v, pp, dur, parseDuration, &h.SendTimeout)
		case "keepalive_timeout":
			parsed(d, p.v, pp, dur, parseDuration, &h.KeepaliveTimeout)
		case "client_max_body_size":
			parsed(d, p.v, pp, "a size", parseSize, &h.ClientMaxBodySize)
		case "proxy_busy_buffers_size":
			parsed(d, p.v, pp, "a size", parseSize, &h.ProxyBusyBuffersSize)
		case "large_client_header_buffers":
			parsed(d, p.v, pp, "a size", parseHeaderBuffers, &h.LargeClientHeaderBuffers)
		case "enable_access_log":
			d.boolean(p.v, pp, &h.EnableAccessLog)
		case "access_log":
			var s string
			if !d.str(p.v, pp, &s) {
				return
			}
			switch strings.TrimSpace(s) {
			case "":
				d.failf(p.v, "%s: want a file name, - for stdout, or off", pp)
			case "off": // nginx
				h.EnableAccessLog = false
			default:
				h.AccessLog = s
			}
		default:
			d.other(p, path, httpIgnored)
		}
	})
}

func (d *decoder) pluginAttr(n *yaml.Node, path string) {
	d.each(n, path, func(p pair) {
		if p.key == "prometheus" {
			d.prometheus(p.v, join(path, p.key))
			return
		}
		d.warnf(p.k, "%s: plugin attributes of %s are not implemented by sluice, ignored", join(path, p.key), p.key)
	})
}

func (d *decoder) prometheus(n *yaml.Node, path string) {
	pr := &d.c.PluginAttr.Prometheus
	d.each(n, path, func(p pair) {
		pp := join(path, p.key)
		switch p.key {
		case "export_uri":
			if d.str(p.v, pp, &pr.ExportURI) && !strings.HasPrefix(pr.ExportURI, "/") {
				d.failf(p.v, "%s: want a path starting with /, got %q", pp, pr.ExportURI)
			}
		case "export_addr":
			d.addr(p, pp, &pr.ExportAddr)
		case "default_buckets":
			var b []float64
			bad := false
			ok := d.list(p.v, pp, func(i int, item *yaml.Node) {
				var f float64
				if !parsed(d, item, index(pp, i), "a number", parseFloat, &f) {
					bad = true
					return
				}
				b = append(b, f)
			})
			if !ok || bad {
				return
			}
			if err := checkBuckets(b); err != nil {
				d.failf(p.v, "%s: %v", pp, err)
				return
			}
			pr.DefaultBuckets = b
		default:
			d.other(p, path, prometheusIgnored)
		}
	})
}

func parseFloat(s string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, fmt.Errorf("want a number, got %q", s)
	}
	return f, nil
}

// finish runs the checks that need the whole file: role and provider,
// admin keys, listen-address clashes, and the security warnings.
func (d *decoder) finish() {
	c := d.c
	dp := &c.Deployment
	switch {
	case dp.Role == RoleDataPlane:
		// APISIX standalone mode: role data_plane, role_data_plane.config_provider yaml.
		if d.dpProvider == nil {
			d.failf(d.roleNode, "deployment.role: data_plane needs role_data_plane.config_provider: yaml (APISIX standalone mode)")
			return
		}
		dp.ConfigProvider = ProviderYAML
		if d.enableAdmin != nil && c.Apisix.EnableAdmin {
			d.warnf(d.enableAdmin, "%s: ignored: a data_plane has no Admin API", d.enableAdminPath)
		}
		c.Apisix.EnableAdmin = false
	case d.dataPlaneNode != nil:
		d.warnf(d.dataPlaneNode, "deployment.role_data_plane: ignored because deployment.role is traditional")
	}
	if d.sslEnable != nil {
		c.Apisix.SSL.Listen = nil
	}

	ad := &dp.Admin
	seen := map[string]int{}
	for i, k := range ad.AdminKey {
		at := d.keyNodes[i]
		what := index("deployment.admin.admin_key", i)
		if k.Name != "" {
			what += fmt.Sprintf(" (name %q)", k.Name)
		}
		if k.Key == "" {
			continue // generated or dropped by the key policy
		}
		if err := checkKey(k.Key); err != nil {
			d.failf(at, "%s: %v", what, err)
			continue
		}
		if j, dup := seen[k.Key]; dup {
			d.failf(at, "%s: key is the same as admin_key[%d]'s; give every entry its own key", what, j)
		}
		seen[k.Key] = i
	}

	ls := c.listeners()
	for i := range ls {
		ls[i].line = d.lines[ls[i].path]
	}
	if i, j, ok := clash(ls); ok {
		d.failf(&yaml.Node{Line: ls[j].line}, "%s: %s clashes with %s (%s)", ls[j].path, ls[j].hostPort(), ls[i].path, ls[i].hostPort())
	}

	if !c.Apisix.EnableAdmin {
		return
	}
	if !ad.AdminKeyRequired {
		d.warnf(d.keyRequiredNode, "WARNING: deployment.admin.admin_key_required is false: the Admin API accepts requests without any key from every address in allow_admin")
	}
	if open := openCIDR(ad.AllowAdmin); open != "" && !isLoopback(ad.AdminListen.IP) {
		d.warnf(d.allowAdminNode, "WARNING: deployment.admin.allow_admin has %s and admin_listen is %s: the Admin API is reachable from anywhere and only the admin key protects it; list your management subnets instead",
			open, listener{a: ad.AdminListen}.hostPort())
	}
}

// openCIDR returns the first allow_admin entry that allows every address.
func openCIDR(cidrs []string) string {
	for _, s := range cidrs {
		if p, err := parseCIDR(s); err == nil && p.Bits() == 0 {
			return s
		}
	}
	return ""
}

func isLoopback(ip string) bool {
	s, err := parseIP(ip)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(s)
	return err == nil && a.Unmap().IsLoopback()
}
