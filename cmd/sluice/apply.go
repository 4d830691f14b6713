package main

// `sluice apply -f FILE`: declarative sync of a file of Admin API objects
// (routes, upstreams, services, plugin_configs, consumers, ssls,
// global_rules) to a running gateway through its Admin API.
//
// Ownership. Every object apply writes carries the label
// managed-by: sluice-apply (merged into its labels). apply deletes only
// objects with that label that the file does not name, so objects created by
// hand (or by another tool) are never deleted; an unlabelled object the file
// names is updated and from then on belongs to the file. Global rules have no
// labels in APISIX's schema (the Admin API refuses them): apply creates and
// updates the global rules the file names but never deletes one, and
// --dry-run says so for each global rule on the gateway the file does not
// name.
//
// Plan. apply GETs every list, then for each item of the file: create
// (absent), update (different, ignoring create_time/update_time), unchanged.
// Secrets the Admin API masks ("******", consumer credentials, passwords)
// or leaves out (ssl key/keys) cannot be compared: an item with one is
// always PUT again and reported "(secret not comparable)". Creates and
// updates run upstreams → services → plugin_configs → consumers → ssls →
// routes → global_rules, then deletes in the reverse order, so that a
// reference never dangles. The first Admin API error stops apply (exit 1)
// after what was already applied is reported.

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sluice-gw/sluice/admin/standalone"
	"github.com/sluice-gw/sluice/conf"
	"github.com/sluice-gw/sluice/model"
)

const (
	// applyLabelKey and applyLabelValue mark the objects apply owns.
	applyLabelKey   = "managed-by"
	applyLabelValue = "sluice-apply"
	// applyMask is how the Admin API shows a secret.
	applyMask = "******"
	// applyKeyEnv holds the admin key when --key is not given.
	applyKeyEnv = "SLUICE_ADMIN_KEY"
	// applyDefaultConfig is read for the admin address and key when -c is
	// not given and the file exists.
	applyDefaultConfig = "conf/config.yaml"
)

// applyOrder is the order of creates and updates: what is referred to
// before what refers to it. Deletes run in the reverse order.
var applyOrder = []string{"upstreams", "services", "plugin_configs", "consumers", "ssls", "routes", "global_rules"}

// applyUnlabelled are the resources whose schema has no labels: apply
// never deletes them.
var applyUnlabelled = map[string]bool{"global_rules": true}

// applyUsernameRe is APISIX's consumer username pattern.
var applyUsernameRe = regexp.MustCompile(`^[a-zA-Z0-9_\-]+$`)

func applyUsage(w io.Writer) {
	fmt.Fprint(w, `usage: sluice apply -f FILE [--dry-run] [-c conf/config.yaml] [--admin http://127.0.0.1:9180] [--key KEY]

Makes a running gateway's objects match FILE through its Admin API: creates
what FILE names and the gateway lacks, updates what differs, and deletes what
an earlier apply created (label managed-by: sluice-apply) that FILE no longer
names. Objects created any other way are never deleted. Global rules have no
labels: apply creates and updates them but never deletes one.

FILE is YAML or JSON (by extension, else by content) with the top-level lists
upstreams, services, plugin_configs, consumers, ssls, routes, global_rules;
items are Admin API bodies with their "id" (consumers: "username"). A
trailing #END line is allowed.

flags:
  -f FILE       the file to apply (required)
  --dry-run     print the plan, change nothing
  -c FILE       config file giving the Admin API address and key
                (default conf/config.yaml when present; nothing is written;
                a generated key is read from <embedded path>/admin_key)
  --admin URL   Admin API address (default: the config's admin_listen)
  --key KEY     admin key (default: $SLUICE_ADMIN_KEY, then the config)

Output: "+ res/id" created, "~ res/id (fields)" updated, "- res/id" deleted,
then "N created, N updated, N deleted, N unchanged". Exit 0 on success, 1 on
an error (the first Admin API error stops apply), 2 on a usage error.
`)
}

func cmdApply(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { applyUsage(stderr) }
	file := fs.String("f", "", "file to apply")
	dry := fs.Bool("dry-run", false, "print the plan, change nothing")
	cfgPath := fs.String("c", "", "config file (default conf/config.yaml when present)")
	adminURL := fs.String("admin", "", "Admin API address")
	key := fs.String("key", "", "admin key")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sluice apply: unexpected argument %q\n", fs.Arg(0))
		applyUsage(stderr)
		return 2
	}
	if *file == "" {
		fmt.Fprintln(stderr, "sluice apply: -f FILE is required")
		applyUsage(stderr)
		return 2
	}
	data, err := os.ReadFile(*file)
	if err != nil {
		fmt.Fprintln(stderr, "sluice apply:", err)
		return 1
	}
	af, err := parseApplyFile(*file, data)
	if err != nil {
		fmt.Fprintln(stderr, "sluice apply:", err)
		return 1
	}
	if *key == "" {
		*key = os.Getenv(applyKeyEnv)
	}
	base, k, err := applyTarget(*cfgPath, *adminURL, *key)
	if err != nil {
		fmt.Fprintln(stderr, "sluice apply:", err)
		return 1
	}
	c := &applyClient{base: base, key: k, hc: &http.Client{Timeout: 30 * time.Second}}
	cur, err := c.state()
	if err != nil {
		fmt.Fprintln(stderr, "sluice apply:", err)
		return 1
	}
	p := buildApplyPlan(af, cur)
	if *dry {
		for _, ch := range p.changes {
			fmt.Fprintln(stdout, "(dry run)", ch)
		}
		for _, id := range p.kept {
			fmt.Fprintf(stdout, "(dry run) = global_rules/%s is not in the file but is kept: global rules have no labels, apply never deletes them\n", id)
		}
		n := p.counts()
		fmt.Fprintln(stdout, "(dry run)", n.summary(p.unchanged))
		return 0
	}
	done, err := p.run(c, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "sluice apply:", err)
		fmt.Fprintf(stdout, "stopped at the first error: %d created, %d updated, %d deleted; %d of %d changes not made\n",
			done.created, done.updated, done.deleted, len(p.changes)-done.total(), len(p.changes))
		return 1
	}
	fmt.Fprintln(stdout, done.summary(p.unchanged))
	return 0
}

// applyTarget returns the Admin API base URL and key: the flags, else the
// config file (cfgPath, or conf/config.yaml when present), read with
// conf.Parse so that nothing is generated or written; a config without a key
// falls back to the generated key kept in <embedded path>/admin_key.
func applyTarget(cfgPath, adminURL, key string) (string, string, error) {
	if adminURL == "" || key == "" {
		cfg := conf.Default()
		path := cfgPath
		if path == "" {
			if _, err := os.Stat(applyDefaultConfig); err == nil {
				path = applyDefaultConfig
			}
		}
		if path != "" {
			c, err := conf.Parse(path)
			if err != nil {
				return "", "", err
			}
			cfg = c
		}
		ad := cfg.Deployment.Admin
		if adminURL == "" {
			ip := ad.AdminListen.IP
			switch ip {
			case "", "0.0.0.0":
				ip = "127.0.0.1"
			case "::", "[::]":
				ip = "::1"
			}
			adminURL = "http://" + net.JoinHostPort(strings.Trim(ip, "[]"), strconv.Itoa(ad.AdminListen.Port))
		}
		if key == "" {
			for _, k := range ad.AdminKey {
				if k.Key != "" && k.Role != conf.KeyRoleViewer {
					key = k.Key
					break
				}
			}
		}
		if key == "" && cfg.Deployment.Embedded.Path != "" {
			b, err := os.ReadFile(filepath.Join(cfg.Deployment.Embedded.Path, "admin_key"))
			switch {
			case err == nil:
				key = strings.TrimSpace(string(b))
			case !errors.Is(err, fs.ErrNotExist):
				return "", "", fmt.Errorf("admin key: %w", err)
			}
		}
	}
	if !strings.Contains(adminURL, "://") {
		adminURL = "http://" + adminURL
	}
	return strings.TrimRight(adminURL, "/"), key, nil
}

// ---- the file ----

// applyItem is one object of the file, ready to PUT: labels merged, id
// set as a string, create_time/update_time left out.
type applyItem struct {
	id    string
	value map[string]any
}

// applyFile is a parsed file: resource → items in file order.
type applyFile struct {
	items map[string][]applyItem
}

// parseApplyFile reads a YAML or JSON file of Admin API objects.
func parseApplyFile(name string, data []byte) (*applyFile, error) {
	data = stripEndMarker(data)
	isJSON := false
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json":
		isJSON = true
	case ".yaml", ".yml":
	default:
		t := bytes.TrimLeft(data, " \t\r\n\ufeff")
		isJSON = len(t) > 0 && t[0] == '{'
	}
	var top any
	var lines map[string][]int
	var err error
	if isJSON {
		top, err = applyDecodeJSON(data)
	} else {
		top, lines, err = applyDecodeYAML(data)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	m, ok := top.(map[string]any)
	if top != nil && !ok {
		return nil, fmt.Errorf("%s: want a mapping of resource lists (%s) at the top level", name, strings.Join(applyOrder, ", "))
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("%s: names no resources (%s); to delete everything apply manages, give empty lists, e.g. routes: []",
			name, strings.Join(applyOrder, ", "))
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(applyOrder, k) {
			return nil, fmt.Errorf("%s: unknown top-level key %q (want %s)", name, k, strings.Join(applyOrder, ", "))
		}
	}
	f := &applyFile{items: map[string][]applyItem{}}
	for _, res := range applyOrder {
		v, present := m[res]
		if !present || v == nil {
			continue
		}
		list, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("%s: %s: want a list, got %s", name, res, applyKind(v))
		}
		seen := map[string]int{}
		for i, e := range list {
			where := fmt.Sprintf("%s[%d]", res, i)
			if i < len(lines[res]) {
				where += fmt.Sprintf(" (line %d)", lines[res][i])
			}
			obj, ok := e.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: %s: want a mapping, got %s", name, where, applyKind(e))
			}
			it, err := prepareApplyItem(res, obj)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", name, where, err)
			}
			if j, dup := seen[it.id]; dup {
				return nil, fmt.Errorf("%s: %s: %s/%s is also %s[%d]", name, where, res, it.id, res, j)
			}
			seen[it.id] = i
			f.items[res] = append(f.items[res], it)
		}
	}
	return f, nil
}

// prepareApplyItem checks the id and makes the body apply PUTs.
func prepareApplyItem(res string, obj map[string]any) (applyItem, error) {
	var id string
	if res == "consumers" {
		u, ok := obj["username"].(string)
		switch {
		case obj["username"] == nil:
			return applyItem{}, errors.New(`"username" is required`)
		case !ok:
			return applyItem{}, fmt.Errorf(`"username" must be a string, got %s`, applyKind(obj["username"]))
		case len(u) > 100 || !applyUsernameRe.MatchString(u):
			return applyItem{}, fmt.Errorf(`"username" %q does not match %s`, u, applyUsernameRe)
		}
		id = u
	} else {
		switch v := obj["id"].(type) {
		case nil:
			return applyItem{}, errors.New(`"id" is required`)
		case string:
			id = v
		case json.Number:
			if _, err := strconv.ParseUint(string(v), 10, 64); err != nil {
				return applyItem{}, fmt.Errorf(`"id" %s is not a positive integer or a string`, v)
			}
			id = string(v)
		default:
			return applyItem{}, fmt.Errorf(`"id" must be a string, got %s`, applyKind(v))
		}
		if !model.ValidID(id) {
			return applyItem{}, fmt.Errorf(`"id" %q does not match ^[a-zA-Z0-9-_.]{1,64}$`, id)
		}
		obj["id"] = id
	}
	delete(obj, "create_time")
	delete(obj, "update_time")
	if p := applyFindMask(obj, ""); p != "" {
		return applyItem{}, fmt.Errorf("%s is %q, a secret masked by the Admin API: give the real value", p, applyMask)
	}
	if !applyUnlabelled[res] {
		labels := map[string]any{}
		switch l := obj["labels"].(type) {
		case nil:
		case map[string]any:
			labels = l
		default:
			return applyItem{}, fmt.Errorf(`"labels" must be a mapping, got %s`, applyKind(l))
		}
		if v, ok := labels[applyLabelKey]; ok && v != applyLabelValue {
			return applyItem{}, fmt.Errorf("labels.%s is reserved: apply sets it to %q", applyLabelKey, applyLabelValue)
		}
		labels[applyLabelKey] = applyLabelValue
		obj["labels"] = labels
	}
	return applyItem{id: id, value: obj}, nil
}

// stripEndMarker drops a trailing "#END" line (APISIX's standalone files
// end with one).
func stripEndMarker(data []byte) []byte {
	t := bytes.TrimRight(data, " \t\r\n")
	if !bytes.HasSuffix(t, []byte("#END")) {
		return data
	}
	rest := t[:len(t)-len("#END")]
	if len(rest) > 0 && rest[len(rest)-1] != '\n' {
		return data
	}
	return rest
}

func applyDecodeJSON(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff"))))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("json: %w", err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("json: data after the top-level value")
	}
	return v, nil
}

// applyDecodeYAML decodes one YAML document into JSON-like values
// (map[string]any, []any, string, json.Number, bool, nil) and returns the
// line of each item of each top-level list.
func applyDecodeYAML(data []byte) (v any, lines map[string][]int, err error) {
	defer func() {
		if p := recover(); p != nil {
			v, lines, err = nil, nil, fmt.Errorf("yaml: %v", p)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, nil, fmt.Errorf("line %d: more than one YAML document", next.Line)
	} else if !errors.Is(err, io.EOF) {
		return nil, nil, err
	}
	root := standalone.Deref(&doc)
	if root == nil || root.Kind == 0 || root.Kind == yaml.DocumentNode ||
		root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, nil, nil
	}
	v, err = standalone.Value(root)
	if err != nil {
		return nil, nil, err
	}
	lines = map[string][]int{}
	if root.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(root.Content); i += 2 {
			if l := standalone.Deref(root.Content[i+1]); l.Kind == yaml.SequenceNode {
				for _, c := range l.Content {
					lines[root.Content[i].Value] = append(lines[root.Content[i].Value], standalone.Deref(c).Line)
				}
			}
		}
	}
	return v, lines, nil
}

func applyKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

// applyFindMask returns the path of the first string equal to the mask
// ("" for none).
func applyFindMask(v any, path string) string {
	switch x := v.(type) {
	case string:
		if x == applyMask {
			return strings.TrimPrefix(path, ".")
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if p := applyFindMask(x[k], path+"."+k); p != "" {
				return p
			}
		}
	case []any:
		for i, e := range x {
			if p := applyFindMask(e, fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p
			}
		}
	}
	return ""
}

// ---- the Admin API ----

// applyClient talks to the Admin API.
type applyClient struct {
	base, key string
	hc        *http.Client
}

// applyAPIError is a non-2xx answer of the Admin API.
type applyAPIError struct {
	method, path string
	status       int
	msg          string
}

func (e *applyAPIError) Error() string {
	s := fmt.Sprintf("%s %s: %d %s", e.method, e.path, e.status, e.msg)
	if e.status == http.StatusUnauthorized {
		s += " (check --key, $" + applyKeyEnv + " or the config's admin_key)"
	}
	return s
}

func (c *applyClient) do(method, path string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if c.key != "" {
		req.Header.Set("X-API-KEY", c.key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, &applyAPIError{method: method, path: path, status: resp.StatusCode, msg: applyErrorText(b)}
	}
	return b, nil
}

// applyErrorText is the error_msg of an Admin API answer (with its
// description), else its message, else the body.
func applyErrorText(b []byte) string {
	var m struct {
		ErrorMsg    string `json:"error_msg"`
		Description string `json:"description"`
		Message     string `json:"message"`
	}
	if json.Unmarshal(b, &m) == nil {
		switch {
		case m.ErrorMsg != "" && m.Description != "":
			return m.ErrorMsg + " (" + m.Description + ")"
		case m.ErrorMsg != "":
			return m.ErrorMsg
		case m.Message != "":
			return m.Message
		}
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// state GETs every list: resource → id → value.
func (c *applyClient) state() (map[string]map[string]map[string]any, error) {
	out := make(map[string]map[string]map[string]any, len(applyOrder))
	for _, res := range applyOrder {
		path := "/apisix/admin/" + res
		b, err := c.do(http.MethodGet, path, nil)
		if err != nil {
			return nil, err
		}
		var lb struct {
			List json.RawMessage `json:"list"`
		}
		if err := json.Unmarshal(b, &lb); err != nil {
			return nil, fmt.Errorf("GET %s: %w", path, err)
		}
		out[res] = map[string]map[string]any{}
		if t := bytes.TrimSpace(lb.List); len(t) == 0 || t[0] != '[' {
			continue // APISIX may answer an empty list as {}
		}
		var list []struct {
			Key   string          `json:"key"`
			Value json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(lb.List, &list); err != nil {
			return nil, fmt.Errorf("GET %s: %w", path, err)
		}
		for _, e := range list {
			d := json.NewDecoder(bytes.NewReader(e.Value))
			d.UseNumber()
			var v map[string]any
			if err := d.Decode(&v); err != nil || v == nil {
				return nil, fmt.Errorf("GET %s: item %s: value is not an object", path, e.Key)
			}
			id := e.Key[strings.LastIndexByte(e.Key, '/')+1:]
			out[res][id] = v
		}
	}
	return out, nil
}

// ---- the plan ----

// applyChange is one write of a plan.
type applyChange struct {
	op      byte // '+' create, '~' update, '-' delete
	res, id string
	fields  []string // top-level fields that differ ('~')
	secret  bool     // '~': an item with a masked secret, always PUT again
	body    []byte   // '+', '~'
}

func (ch applyChange) String() string {
	s := fmt.Sprintf("%c %s/%s", ch.op, ch.res, ch.id)
	if ch.op != '~' {
		return s
	}
	var why []string
	if len(ch.fields) > 0 {
		why = append(why, strings.Join(ch.fields, ", "))
	}
	if ch.secret {
		why = append(why, "secret not comparable")
	}
	return s + " (" + strings.Join(why, "; ") + ")"
}

// applyPlan is the writes that make the gateway match the file, in
// execution order.
type applyPlan struct {
	changes   []applyChange
	unchanged int
	kept      []string // global rules not in the file: never deleted
}

type applyCounts struct{ created, updated, deleted int }

func (n *applyCounts) add(op byte) {
	switch op {
	case '+':
		n.created++
	case '~':
		n.updated++
	case '-':
		n.deleted++
	}
}

func (n applyCounts) total() int { return n.created + n.updated + n.deleted }

func (n applyCounts) summary(unchanged int) string {
	return fmt.Sprintf("%d created, %d updated, %d deleted, %d unchanged", n.created, n.updated, n.deleted, unchanged)
}

func (p *applyPlan) counts() applyCounts {
	var n applyCounts
	for _, ch := range p.changes {
		n.add(ch.op)
	}
	return n
}

// buildApplyPlan compares the file with the gateway's objects (cur, as
// GET shows them).
func buildApplyPlan(f *applyFile, cur map[string]map[string]map[string]any) *applyPlan {
	p := &applyPlan{}
	for _, res := range applyOrder {
		for _, it := range f.items[res] {
			ch := applyChange{res: res, id: it.id, body: applyEncode(it.value)}
			old, ok := cur[res][it.id]
			if !ok {
				ch.op = '+'
				p.changes = append(p.changes, ch)
				continue
			}
			ch.fields, ch.secret = applyDiff(res, it.value, old)
			if len(ch.fields) == 0 && !ch.secret {
				p.unchanged++
				continue
			}
			ch.op = '~'
			p.changes = append(p.changes, ch)
		}
	}
	for i := len(applyOrder) - 1; i >= 0; i-- {
		res := applyOrder[i]
		named := map[string]bool{}
		for _, it := range f.items[res] {
			named[it.id] = true
		}
		ids := make([]string, 0, len(cur[res]))
		for id := range cur[res] {
			if !named[id] {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		for _, id := range ids {
			if applyUnlabelled[res] {
				p.kept = append(p.kept, id)
				continue
			}
			if l, _ := cur[res][id]["labels"].(map[string]any); l[applyLabelKey] == applyLabelValue {
				p.changes = append(p.changes, applyChange{op: '-', res: res, id: id})
			}
		}
	}
	return p
}

// applyDiff returns the top-level fields in which want (the body apply
// would PUT) and have (the value GET shows) differ, ignoring create_time
// and update_time, and whether have holds a secret GET does not show (a
// masked value, or an ssl's key/keys): such an item cannot be compared and
// is always PUT again.
func applyDiff(res string, want, have map[string]any) (fields []string, secret bool) {
	skip := map[string]bool{"create_time": true, "update_time": true}
	if res == "ssls" {
		skip["key"], skip["keys"] = true, true // never shown by GET
		secret = true
	}
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range have {
		keys[k] = true
	}
	for k := range keys {
		if skip[k] {
			continue
		}
		if !applyEqual(want[k], have[k], &secret) {
			fields = append(fields, k)
		}
	}
	slices.Sort(fields)
	return fields, secret
}

// applyEqual compares JSON values; a masked string in have matches any
// string in want and sets *masked. A missing member equals null.
func applyEqual(want, have any, masked *bool) bool {
	if s, ok := have.(string); ok && s == applyMask {
		if _, ok := want.(string); ok {
			*masked = true
			return true
		}
	}
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		eq := true
		for k, v := range w {
			if !applyEqual(v, h[k], masked) {
				eq = false
			}
		}
		for k, v := range h {
			if _, ok := w[k]; !ok && v != nil {
				eq = false
			}
		}
		return eq
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return false
		}
		eq := true
		for i := range w {
			if !applyEqual(w[i], h[i], masked) {
				eq = false
			}
		}
		return eq
	case json.Number:
		h, ok := have.(json.Number)
		if !ok {
			return false
		}
		if w == h {
			return true
		}
		a, aok := new(big.Rat).SetString(string(w))
		b, bok := new(big.Rat).SetString(string(h))
		return aok && bok && a.Cmp(b) == 0
	default:
		return want == have
	}
}

// applyEncode is compact JSON without HTML escaping.
func applyEncode(v any) []byte {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	_ = e.Encode(v) // decoded JSON values always encode
	return bytes.TrimRight(b.Bytes(), "\n")
}

// run makes the plan's writes in order, printing each once it succeeded;
// it stops at the first error.
func (p *applyPlan) run(c *applyClient, out io.Writer) (applyCounts, error) {
	var done applyCounts
	for _, ch := range p.changes {
		path := "/apisix/admin/" + ch.res + "/" + ch.id
		var err error
		if ch.op == '-' {
			_, err = c.do(http.MethodDelete, path, nil)
		} else {
			_, err = c.do(http.MethodPut, path, ch.body)
		}
		if err != nil {
			return done, err
		}
		fmt.Fprintln(out, ch)
		done.add(ch.op)
	}
	return done, nil
}
