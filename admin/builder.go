package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/admin/store"
	"github.com/sluice-gw/sluice/model"
	"github.com/sluice-gw/sluice/router"
)

// writeReq is one Admin API write, executed on the builder goroutine.
type writeReq struct {
	method string // PUT, POST, PATCH, DELETE
	res    *resource
	id     string // from the path; "" when absent
	sub    string // PATCH sub-path ("upstream/nodes"); "" when absent
	body   []byte // request body (nil for DELETE)
	reply  chan reply
}

// reply is a write's response.
type reply struct {
	status int
	body   any
}

// pendingWrite is a write of this server whose Watch echo has not arrived.
type pendingWrite struct {
	value []byte // nil: a delete
	at    time.Time
}

func errReply(status int, msg string) reply {
	return reply{status: status, body: errorBody{Msg: msg}}
}

type errorBody struct {
	Msg string `json:"error_msg"`
}

// run is the builder goroutine.
func (s *Server) run() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var dns <-chan time.Time
	if s.dnsEvery > 0 {
		t := time.NewTicker(s.dnsEvery)
		defer t.Stop()
		dns = t.C
	}
	var rewatch <-chan time.Time
	events := s.events
	for {
		select {
		case <-s.ctx.Done():
			return
		case req := <-s.ops:
			wasDirty := s.dirty
			req.reply <- s.exec(req)
			if wasDirty && !s.dirty {
				timer.Stop()
			}
		case ev, ok := <-events:
			if !ok {
				// The store ended the watch while we still run: watch again
				// and reload everything (changes may have been missed).
				events = nil
				rewatch = time.After(time.Second)
				s.log.Warn("admin: store watch ended; reconnecting")
				continue
			}
			if s.applyEvent(ev) && !s.dirty {
				s.dirty = true
				timer.Reset(debounce)
			}
		case <-rewatch:
			rewatch = nil
			events = s.st.Watch(s.ctx)
			if s.resync() {
				s.dirty = true
				timer.Reset(debounce)
			}
		case <-timer.C:
			s.rebuild("store change")
		case <-dns:
			s.mu.RLock()
			snap := s.state.snapshot(nil)
			s.mu.RUnlock()
			if snap.HasHostNames() {
				s.res.expire()
				s.rebuild("DNS refresh")
			}
		}
	}
}

// build builds st with ch applied, isolated (router.BuildIsolated): nodes
// whose host name does not resolve (those tolerate accepts; nil: all) are
// left out and logged (the DNS refresh brings them back), and the items
// that do not build are returned, by "routes/<id>" (etc.); their routes
// answer 503. A global rule that does not validate or build fails the
// build (left out, it could drop authentication from every route), and
// the items that do not build are returned then too.
func (s *Server) build(st *state, ch *change, why string, tolerate func(host string) bool) (*router.Table, map[string]error, error) {
	t, rep, err := s.b.BuildIsolated(st.snapshot(ch), tolerate)
	if err == nil && len(rep.Unresolved) > 0 {
		s.log.Warn("admin: host names do not resolve; their nodes are left out until they do", "hosts", rep.Unresolved, "cause", why)
	}
	broken := rep.Broken
	if cid, cerr := st.sharedConsumerKey(ch); cerr != nil {
		if broken == nil {
			broken = map[string]error{}
		}
		broken["consumers/"+cid] = cerr // (key-auth lets the key identify nobody)
	}
	for _, id := range st.sortedIDs("global_rules") {
		it := st.items["global_rules"][id]
		if it.obj != nil || ch.replaces("global_rules", id) {
			continue
		}
		gerr := fmt.Errorf("stored global rule %q does not validate: %w", id, it.err)
		if broken == nil {
			broken = map[string]error{}
		}
		broken["global_rules/"+id] = gerr
		if err == nil {
			t, err = nil, gerr
		}
	}
	return t, broken, err
}

// noteBroken records what the current state leaves broken (the baseline a
// write is judged against) and logs the items that stopped or started
// building.
func (s *Server) noteBroken(broken map[string]error, why string) {
	for _, k := range slices.Sorted(maps.Keys(broken)) {
		if _, was := s.broken[k]; !was {
			s.log.Error("admin: a stored item does not build", "item", k, "effect", brokenEffect(k), "err", broken[k], "cause", why)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.broken)) {
		if _, still := broken[k]; !still {
			s.log.Info("admin: a stored item builds again", "item", k, "cause", why)
		}
	}
	s.broken = broken
}

// brokenEffect says, for the log, what an item that does not build does to
// traffic.
func brokenEffect(key string) string {
	switch res, _, _ := strings.Cut(key, "/"); res {
	case "routes":
		return "its requests answer 503"
	case "global_rules":
		return "the routing table is kept as it was"
	case "consumers":
		return "its key authenticates nobody"
	default:
		return "the routes using it answer 503"
	}
}

// breaks returns why a change may not be stored: the item written (key
// res/id; "" for a delete) does not build, or an item that built before
// the change does not build after it. Items already broken (another
// writer's dangling reference) are not this change's fault; a service or
// plugin_config whose own plugins broke a route is reported with it
// (router blameShared), so deleting that route breaks nothing new.
func (s *Server) breaks(key string, broken map[string]error) error {
	if err := broken[key]; err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(broken)) {
		if strings.HasPrefix(k, "consumers/") {
			continue // (a shared key: checkRefs refuses a write that makes one)
		}
		if _, was := s.broken[k]; !was {
			return fmt.Errorf("this change would break %s: %w", k, broken[k])
		}
	}
	return nil
}

// judge decides whether a write of res (id "" for a delete) may be stored,
// given its build's broken items and error: not when it breaks something
// (breaks), nor when the result does not build, except for a global rule
// write that leaves fewer global rules broken than before: with two broken
// global rules, mending one must be possible though the table cannot be
// published until the other is mended too.
func (s *Server) judge(res, id string, broken map[string]error, buildErr error) error {
	key := ""
	if id != "" {
		key = res + "/" + id
	}
	if err := s.breaks(key, broken); err != nil {
		return err
	}
	if buildErr == nil {
		return nil
	}
	if res != "global_rules" || !globalOnly(broken) {
		return buildErr
	}
	before, after := brokenGlobals(s.broken), brokenGlobals(broken)
	if len(after) >= len(before) {
		return buildErr
	}
	for _, k := range after {
		if _, was := s.broken[k]; !was {
			return buildErr
		}
	}
	return nil
}

// globalOnly reports whether a failed build's broken items say it failed
// on global rules (router.BuildIsolated), not on something structural.
func globalOnly(broken map[string]error) bool { return len(brokenGlobals(broken)) > 0 }

func brokenGlobals(broken map[string]error) []string {
	var out []string
	for k := range broken {
		if strings.HasPrefix(k, "global_rules/") {
			out = append(out, k)
		}
	}
	return out
}

// publish makes t the routing table; nil (a write that mended one of
// several broken global rules) keeps the last one.
func (s *Server) publish(t *router.Table, why string) {
	if t == nil {
		s.log.Warn("admin: stored; the routing table stays as it was until every global rule builds", "cause", why)
		return
	}
	s.pub.Store(t)
}

// rebuild builds the current state and publishes it; a state that does not
// build at all (a global rule another writer stored) keeps the last table.
func (s *Server) rebuild(why string) {
	s.dirty = false
	t, broken, err := s.build(s.state, nil, why, nil)
	if broken != nil || err == nil {
		s.noteBroken(broken, why)
	}
	if err != nil {
		s.log.Error("admin: configuration does not build; keeping the current routing table", "cause", why, "err", err)
		return
	}
	s.pub.Store(t)
	s.log.Debug("admin: routing table published", "cause", why, "generation", t.Generation)
}

// applyEvent applies a Watch event to the state and reports whether the
// routing table must be rebuilt.
func (s *Server) applyEvent(ev store.Event) bool {
	if ev.Type == store.EventResync {
		return s.resync()
	}
	res, id, ok := splitKey(s.prefix, ev.KV.Key)
	if !ok {
		return false
	}
	key := ev.KV.Key
	del := ev.Type == store.EventDelete
	// The echo of a write of ours: the state already has it (or a later
	// write of ours), so there is nothing to do but record the revision.
	// An event that is not the next echo while writes of ours are pending
	// was ordered before them by the store: ours supersede it.
	if q := s.pending[key]; len(q) > 0 {
		now := s.now()
		for len(q) > 0 && now.Sub(q[0].at) > pendingTTL {
			q = q[1:] // the echo never came (or did not match): stop waiting
		}
		if len(q) > 0 {
			head := q[0]
			if (head.value == nil) == del && (del || bytes.Equal(head.value, ev.KV.Value)) {
				q = q[1:]
				s.setPending(key, q)
				if !del {
					s.setRevision(res, id, ev.KV.Value, ev.KV.Revision)
				}
				return false
			}
			s.setPending(key, q)
			return false
		}
		s.setPending(key, q)
	}
	cur := s.state.get(res, id)
	if del {
		if cur == nil || (cur.rev > 0 && ev.KV.Revision > 0 && ev.KV.Revision < cur.rev) {
			return false
		}
		s.mu.Lock()
		delete(s.state.items[res], id)
		s.mu.Unlock()
		return true
	}
	if cur != nil {
		if cur.rev > 0 && ev.KV.Revision > 0 && ev.KV.Revision <= cur.rev {
			return false // older than what we have (replayed after Load's List)
		}
		if bytes.Equal(cur.raw, ev.KV.Value) {
			s.setRevision(res, id, ev.KV.Value, ev.KV.Revision)
			return false
		}
	}
	it := s.decodeForeign(res, id, ev.KV)
	if cur != nil && cur.created > 0 {
		it.created = cur.created
	}
	s.mu.Lock()
	s.state.items[res][id] = it
	s.mu.Unlock()
	return true
}

func (s *Server) setPending(key string, q []pendingWrite) {
	if len(q) == 0 {
		delete(s.pending, key)
		return
	}
	s.pending[key] = q
}

// setRevision records the store revision of res/id if it still holds value.
func (s *Server) setRevision(res, id string, value []byte, rev int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.state.get(res, id)
	if it == nil || !bytes.Equal(it.raw, value) {
		return
	}
	if rev > it.rev {
		it.rev = rev
	}
	if it.created == 0 {
		it.created = rev
	}
}

// decodeForeign decodes an item written by someone else (another gateway,
// APISIX tooling, or what Load and resync read). One that does not decode
// or validate is kept for GET and logged; a route of that kind still
// takes its place in the table, answering 503 (state.snapshot), the rest
// are left out (what references them answers 503 the same way).
func (s *Server) decodeForeign(res, id string, kv store.KV) *item {
	it := &item{raw: kv.Value, created: kv.Revision, rev: kv.Revision}
	var obj any
	err := fmt.Errorf("invalid %s id %q", resources[res].kind, id)
	if validKeyID(res, id) {
		obj, err = decodeItem(res, id, kv.Value)
	}
	if err != nil {
		s.log.Error("admin: stored item does not validate; it is not served", "key", kv.Key, "err", err)
		it.err = err
		return it
	}
	it.obj = obj
	return it
}

// validKeyID reports whether id, from a store key, is one the Admin API
// could have written for res: a consumer's username, or an APISIX id.
func validKeyID(res, id string) bool {
	if resources[res].byName {
		return model.UsernamePattern.MatchString(id) && len(id) <= 100
	}
	return model.ValidID(id)
}

// loadKV adds one stored item to st (Load, resync).
func (s *Server) loadKV(st *state, kv store.KV) {
	res, id, ok := splitKey(s.prefix, kv.Key)
	if !ok {
		s.log.Debug("admin: ignoring a store key sluice does not serve", "key", kv.Key)
		return
	}
	st.items[res][id] = s.decodeForeign(res, id, kv)
}

// resync reloads everything from the store (EventResync, a new watch) and
// reports whether anything changed. Items that do not validate are logged
// and left out of the table.
func (s *Server) resync() bool {
	ctx, cancel := context.WithTimeout(s.ctx, s.opWait)
	defer cancel()
	kvs, err := s.st.List(ctx, s.prefix+"/")
	if err != nil {
		s.log.Error("admin: resync: cannot list the store; keeping the current state", "err", err)
		return false
	}
	st := newState()
	for _, kv := range kvs {
		s.loadKV(st, kv)
	}
	clear(s.pending)
	s.mu.Lock()
	for res, m := range st.items {
		for id, it := range m {
			if old := s.state.items[res][id]; old != nil && old.created > 0 && bytes.Equal(old.raw, it.raw) {
				it.created = old.created
			}
		}
	}
	s.state = st
	s.mu.Unlock()
	s.log.Info("admin: reloaded the configuration from the store", "items", len(kvs))
	return true
}

// exec runs one write: it computes the new value, validates it against the
// state, builds the table it gives, makes it durable, then applies it and
// publishes the table. Nothing is stored when any step before the store
// fails, so the stored configuration always builds.
func (s *Server) exec(req *writeReq) reply {
	if s.dirty {
		// a foreign change is waiting for its debounced rebuild: judge
		// this write against the state as it is, not the last table's
		s.rebuild("store change")
	}
	switch req.method {
	case http.MethodDelete:
		return s.execDelete(req)
	case http.MethodPatch:
		return s.execPatch(req)
	default:
		return s.execPut(req)
	}
}

// idOf reads the id (or username) property of a body object.
func idOf(obj map[string]json.RawMessage, r *resource) (string, bool, error) {
	field := "id"
	if r.byName {
		field = "username"
	}
	raw, ok := obj[field]
	if !ok || string(raw) == "null" {
		return "", false, nil
	}
	if r.byName {
		var u string
		if json.Unmarshal(raw, &u) != nil {
			return "", true, &model.Error{Path: []string{"username"}, Reason: "wrong type: expected string, got " + model.GotType(model.JSONKind(raw))}
		}
		return u, true, nil
	}
	var id model.ID
	if err := json.Unmarshal(raw, &id); err != nil || id == "" {
		return "", true, &model.Error{Path: []string{"id"}, Reason: "object matches none of the required"}
	}
	return string(id), true, nil
}

func invalidID() reply {
	return errReply(http.StatusBadRequest, (&model.Error{Path: []string{"id"}, Reason: "object matches none of the required"}).Error())
}

// execPut handles PUT /{res}/{id}, PUT /{res} (id in the body) and POST
// /{res} (generated id).
func (s *Server) execPut(req *writeReq) reply {
	r := req.res
	if len(bytes.TrimSpace(req.body)) == 0 {
		return errReply(http.StatusBadRequest, "missing configurations")
	}
	if err := model.ForbidTimestamps(req.body); err != nil {
		return errReply(http.StatusBadRequest, err.Error())
	}
	obj, err := model.Object(req.body)
	if err != nil {
		return errReply(http.StatusBadRequest, err.Error())
	}
	bodyID, hasID, err := idOf(obj, r)
	if err != nil {
		return errReply(http.StatusBadRequest, err.Error())
	}
	id := req.id
	switch {
	case req.method == http.MethodPost:
		if hasID {
			return errReply(http.StatusBadRequest, "wrong "+r.kind+" id, do not need it")
		}
		id = s.newID(r.name)
	case r.byName:
		switch {
		case id == "" && !hasID:
			return errReply(http.StatusBadRequest, (&model.Error{Reason: `property "username" is required`}).Error())
		case id == "":
			id = bodyID
		case hasID && bodyID != id:
			return errReply(http.StatusBadRequest, "wrong username")
		}
		// PUT /consumers/{username} may leave username out of the body.
		obj["username"], _ = json.Marshal(id)
		if !model.UsernamePattern.MatchString(id) || len(id) > 100 {
			return errReply(http.StatusBadRequest, (&model.Error{Path: []string{"username"},
				Reason: fmt.Sprintf("failed to match pattern %q with %q", model.UsernamePattern.String(), id)}).Error())
		}
	default:
		switch {
		case id == "" && !hasID:
			return errReply(http.StatusBadRequest, "missing "+r.kind+" id")
		case id == "":
			id = bodyID
		case hasID && bodyID != id:
			return errReply(http.StatusBadRequest, "wrong "+r.kind+" id")
		}
		if !model.ValidID(id) {
			return invalidID()
		}
	}
	if !r.byName {
		obj["id"], _ = json.Marshal(id)
	}
	now := s.now().Unix()
	created := now
	if prev := s.state.get(r.name, id); prev != nil {
		var old struct {
			CreateTime *int64 `json:"create_time"`
		}
		if json.Unmarshal(prev.raw, &old) == nil && old.CreateTime != nil {
			created = *old.CreateTime // APISIX: PUT keeps create_time
		}
	}
	obj["create_time"], _ = json.Marshal(created)
	obj["update_time"], _ = json.Marshal(now)
	value, err := encode(obj)
	if err != nil {
		return errReply(http.StatusBadRequest, "invalid request body: "+err.Error())
	}
	rep := s.commit(r, id, value)
	if req.method == http.MethodPost && rep.status == http.StatusOK {
		rep.status = http.StatusCreated
	}
	return rep
}

// execPatch handles PATCH /{res}/{id} (RFC 7386 merge) and PATCH
// /{res}/{id}/{sub/path} (the subtree replaced).
func (s *Server) execPatch(req *writeReq) reply {
	r := req.res
	if req.id == "" {
		return errReply(http.StatusBadRequest, "missing "+r.kind+" id")
	}
	prev := s.state.get(r.name, req.id)
	if prev == nil {
		return reply{status: http.StatusNotFound, body: notFoundBody}
	}
	if len(bytes.TrimSpace(req.body)) == 0 {
		return errReply(http.StatusBadRequest, "missing new configuration")
	}
	patch, err := decodeAny(req.body)
	if err != nil {
		return errReply(http.StatusBadRequest, "invalid request body: "+err.Error())
	}
	cur, err := decodeAny(prev.raw)
	if err != nil {
		return errReply(http.StatusInternalServerError, "stored value does not decode: "+err.Error())
	}
	var merged any
	if req.sub == "" {
		if _, ok := patch.(map[string]any); !ok {
			return errReply(http.StatusBadRequest, "invalid configuration")
		}
		if err := model.ForbidTimestamps(req.body); err != nil {
			return errReply(http.StatusBadRequest, err.Error())
		}
		if m, _ := patch.(map[string]any); m != nil {
			if v, ok := m["id"]; ok && v != nil && fmt.Sprint(v) != req.id {
				return errReply(http.StatusBadRequest, "wrong "+r.kind+" id")
			}
			if v, ok := m["username"]; r.byName && ok && v != req.id {
				return errReply(http.StatusBadRequest, "wrong username")
			}
		}
		merged = mergePatch(cur, patch)
	} else {
		segs := strings.Split(req.sub, "/")
		if segs[0] == "create_time" || segs[0] == "update_time" {
			return errReply(http.StatusBadRequest, "the property is forbidden:  "+segs[0])
		}
		if len(segs) == 1 && (segs[0] == "id" || r.byName && segs[0] == "username") {
			return errReply(http.StatusBadRequest, "wrong "+r.kind+" id")
		}
		if _, ok := patch.(map[string]any); ok {
			if err := model.ForbidTimestamps(req.body); err != nil {
				return errReply(http.StatusBadRequest, err.Error())
			}
		}
		merged, err = patchPath(cur, segs, patch)
		if err != nil {
			return errReply(http.StatusBadRequest, err.Error())
		}
	}
	m, ok := merged.(map[string]any)
	if !ok {
		return errReply(http.StatusBadRequest, "invalid configuration")
	}
	if r.byName {
		m["username"] = req.id
	} else {
		m["id"] = req.id
	}
	if _, ok := m["create_time"]; !ok {
		m["create_time"] = json.Number(strconv.FormatInt(s.now().Unix(), 10))
	}
	m["update_time"] = json.Number(strconv.FormatInt(s.now().Unix(), 10))
	value, err := encode(m)
	if err != nil {
		return errReply(http.StatusBadRequest, "invalid configuration: "+err.Error())
	}
	rep := s.commit(r, req.id, value)
	if rep.status == http.StatusCreated {
		rep.status = http.StatusOK // the key existed a moment ago
	}
	return rep
}

var notFoundBody = map[string]string{"message": "Key not found"}

// commit validates value as res/id, builds the table it gives, stores it
// and publishes the table.
func (s *Server) commit(r *resource, id string, value []byte) reply {
	if path := maskedInput(r.name, value); path != "" {
		// what GET shows in place of a secret, sent back as if it were
		// one (a GET → edit → PUT round trip): storing it would make
		// "******" the real key
		return errReply(http.StatusBadRequest, fmt.Sprintf("%s: %q is the mask GET shows in place of a secret; send the secret itself", path, mask))
	}
	obj, err := decodeItem(r.name, id, value)
	if err != nil {
		return errReply(http.StatusBadRequest, err.Error())
	}
	if err := s.state.checkRefs(r.name, id, obj); err != nil {
		return errReply(http.StatusBadRequest, err.Error())
	}
	// A name another, stored item uses may have stopped resolving: not
	// this write's fault. A name this item brings must resolve: a typo is
	// refused here rather than answered with 502s later.
	t, broken, err := s.build(s.state, &change{res: r.name, id: id, obj: obj}, "write",
		func(host string) bool { return !bytes.Contains(value, []byte(host)) })
	if err := s.judge(r.name, id, broken, err); err != nil {
		return errReply(http.StatusBadRequest, err.Error())
	}
	key := s.prefix + "/" + r.name + "/" + id
	ctx, cancel := context.WithTimeout(s.ctx, s.opWait)
	defer cancel()
	created, err := s.st.Put(ctx, key, value)
	if err != nil {
		return storeError(err)
	}
	s.pending[key] = append(s.pending[key], pendingWrite{value: value, at: s.now()})
	it := &item{raw: value, obj: obj}
	if prev := s.state.get(r.name, id); prev != nil && !created {
		it.created, it.rev = prev.created, prev.rev
	}
	// The store's revision of this write, so a GET right after the 2xx
	// carries modifiedIndex without waiting for the watch echo.
	if kv, ok, err := s.st.Get(ctx, key); err == nil && ok && bytes.Equal(kv.Value, value) {
		it.rev = kv.Revision
		if created || it.created == 0 {
			it.created = kv.Revision
		}
	}
	s.mu.Lock()
	s.state.items[r.name][id] = it
	s.mu.Unlock()
	s.noteBroken(broken, "write")
	s.publish(t, "write")
	s.dirty = false // the table just built includes every change applied so far
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return reply{status: status, body: itemBody{Key: key, Value: masked(r.name, value)}}
}

// execDelete handles DELETE /{res}/{id}.
func (s *Server) execDelete(req *writeReq) reply {
	r := req.res
	if req.id == "" {
		return errReply(http.StatusBadRequest, "missing "+r.kind+" id")
	}
	if s.state.get(r.name, req.id) == nil {
		return reply{status: http.StatusNotFound, body: notFoundBody}
	}
	if err := s.state.checkDelete(r.name, req.id); err != nil {
		return errReply(http.StatusBadRequest, err.Error())
	}
	t, broken, err := s.build(s.state, &change{res: r.name, id: req.id}, "delete", nil)
	if err = s.judge(r.name, "", broken, err); err != nil {
		return errReply(http.StatusBadRequest, err.Error())
	}
	key := s.prefix + "/" + r.name + "/" + req.id
	ctx, cancel := context.WithTimeout(s.ctx, s.opWait)
	existed, err := s.st.Delete(ctx, key)
	cancel()
	if err != nil {
		return storeError(err)
	}
	if existed {
		s.pending[key] = append(s.pending[key], pendingWrite{at: s.now()})
	}
	s.mu.Lock()
	delete(s.state.items[r.name], req.id)
	s.mu.Unlock()
	s.noteBroken(broken, "delete")
	s.publish(t, "delete")
	s.dirty = false
	return reply{status: http.StatusOK, body: deletedBody{Deleted: "1", Key: key}}
}

type deletedBody struct {
	Deleted string `json:"deleted"`
	Key     string `json:"key"`
}

type itemBody struct {
	Key           string          `json:"key"`
	Value         json.RawMessage `json:"value"`
	CreatedIndex  int64           `json:"createdIndex,omitempty"`
	ModifiedIndex int64           `json:"modifiedIndex,omitempty"`
}

// storeError maps a store failure: unreachable → 503 (APISIX answers 503
// with etcd's error), anything else → 500.
func storeError(err error) reply {
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return errReply(http.StatusServiceUnavailable, err.Error())
	}
	return errReply(http.StatusInternalServerError, err.Error())
}

// newID returns a fresh POST id: 20 digits, zero-padded, as APISIX's (an
// etcd revision there). sluice uses the Unix time in microseconds, raised
// past the last id it gave, so ids are increasing, sort by creation time
// and do not collide between gateways sharing etcd in practice.
func (s *Server) newID(res string) string {
	n := s.now().UnixMicro()
	if n <= s.lastID {
		n = s.lastID + 1
	}
	for {
		id := fmt.Sprintf("%020d", n)
		if s.state.get(res, id) == nil {
			s.lastID = n
			return id
		}
		n++
	}
}
