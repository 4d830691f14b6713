package admin

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/conf"
)

const adminPrefix = "/apisix/admin"

// statusWriter records the status for the audit log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// writeJSON writes v with a trailing newline, as APISIX does.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := encode(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error_msg":"failed to encode the response"}`)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Msg: msg})
}

// serveHTTP is the Admin API. Order of checks: client address
// (allow_admin, 403), then HEAD /apisix/admin (200, no key, as APISIX),
// then the key (401), then the body size (413), the resource (404), the
// method (405) and ?ttl= on a write (400: sluice has no expiring keys).
func (s *Server) serveHTTP(rw http.ResponseWriter, r *http.Request) {
	w := &statusWriter{ResponseWriter: rw}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Server", "sluice/"+s.version)
	h.Set("X-API-VERSION", "v3")

	keyName := ""
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		defer func() {
			s.log.Info("admin write", "key", keyName, "client", r.RemoteAddr, "method", r.Method,
				"path", r.URL.Path, "status", w.status)
		}()
	}

	if ip, ok := s.allowed(r.RemoteAddr); !ok {
		writeError(w, http.StatusForbidden, "client address "+ip+" is not allowed to use the Admin API (deployment.admin.allow_admin)")
		return
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	if r.Method == http.MethodHead && path == adminPrefix {
		w.WriteHeader(http.StatusOK)
		return
	}
	name, status, reason := s.authenticate(r)
	keyName = name
	if status != 0 {
		writeJSON(w, status, map[string]string{"error_msg": "failed to check token", "description": reason})
		return
	}

	rest, ok := strings.CutPrefix(path, adminPrefix+"/")
	if !ok {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	segs := strings.SplitN(rest, "/", 3)
	res := resources[segs[0]]
	if res == nil {
		writeError(w, http.StatusNotFound, "Unsupported resource type: "+segs[0])
		return
	}
	var id, sub string
	if len(segs) > 1 {
		id = segs[1]
	}
	if len(segs) > 2 {
		sub = segs[2]
	}
	if sub != "" && r.Method != http.MethodPatch {
		writeError(w, http.StatusNotFound, "not found")
		return
	}

	switch r.Method {
	case http.MethodGet:
		s.get(w, r, res, id)
		return
	case http.MethodPut, http.MethodDelete:
	case http.MethodPost:
		if res.noPost {
			writeError(w, http.StatusMethodNotAllowed, "not supported `POST` method for "+res.kind)
			return
		}
		if id != "" {
			writeError(w, http.StatusBadRequest, "wrong "+res.kind+" id, do not need it")
			return
		}
	case http.MethodPatch:
		if res.noPatch {
			writeError(w, http.StatusMethodNotAllowed, "not supported `PATCH` method for "+res.kind)
			return
		}
	default:
		writeError(w, http.StatusNotFound, "not found") // APISIX: a method the resource lacks
		return
	}

	if r.Method != http.MethodDelete && hasQueryKey(r.URL.RawQuery, "ttl") {
		// APISIX: ?ttl=N on PUT, POST and PATCH stores the key with an etcd
		// lease, so it expires. sluice keeps every key until it is deleted:
		// ignoring ttl would leave a "temporary" route in place for good.
		writeError(w, http.StatusBadRequest, "invalid argument ttl: not supported by sluice, keys never expire")
		return
	}
	req := &writeReq{method: r.Method, res: res, id: id, sub: sub, reply: make(chan reply, 1)}
	if r.Method != http.MethodDelete {
		body, status, err := readBody(w, r)
		if err != nil {
			writeError(w, status, err.Error())
			return
		}
		req.body = body
	}
	select {
	case s.ops <- req:
	case <-s.done:
		writeError(w, http.StatusServiceUnavailable, "the Admin API is shutting down")
		return
	case <-r.Context().Done():
		return
	}
	rep := <-req.reply // the builder always answers a request it took
	writeJSON(w, rep.status, rep.body)
}

// readBody reads at most maxBody bytes (larger → 413, APISIX's words).
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	if r.ContentLength > maxBody {
		return nil, http.StatusRequestEntityTooLarge,
			fmt.Errorf("invalid request body: request size %d is greater than the maximum size %d allowed", r.ContentLength, maxBody)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, http.StatusRequestEntityTooLarge,
				fmt.Errorf("invalid request body: request size is greater than the maximum size %d allowed", maxBody)
		}
		return nil, http.StatusBadRequest, fmt.Errorf("invalid request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) > 0 && !json.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v)
		return nil, http.StatusBadRequest, fmt.Errorf("invalid request body: %v", err)
	}
	return body, 0, nil
}

// allowed checks the client address against allow_admin (no list: every
// address, as APISIX renders "allow all").
func (s *Server) allowed(remote string) (string, bool) {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	if len(s.allow) == 0 {
		return host, true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host, false
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range s.allow {
		if p.Contains(ip) {
			return host, true
		}
	}
	return host, false
}

// authenticate implements APISIX's check_token (apisix/admin/init.lua):
// the key comes from ?api_key=, else the X-API-KEY header, else the
// X-API-KEY cookie; it is compared in constant time with every configured
// key (SHA-256 digests, so neither the content nor the length leaks); a
// viewer may only GET. It returns the key's name, or a status and reason.
func (s *Server) authenticate(r *http.Request) (name string, status int, reason string) {
	if !s.needKey {
		return "", 0, ""
	}
	token := r.URL.Query().Get("api_key")
	if token == "" {
		token = r.Header.Get("X-API-KEY")
	}
	if token == "" {
		if c, err := r.Cookie("X-API-KEY"); err == nil {
			token = c.Value
		}
	}
	if token == "" {
		return "", http.StatusUnauthorized, "missing apikey"
	}
	sum := sum256(token)
	match := -1
	for i := range s.keys {
		if subtle.ConstantTimeCompare(sum[:], s.keys[i].sum[:]) == 1 && match < 0 {
			match = i
		}
	}
	if match < 0 {
		return "", http.StatusUnauthorized, "wrong apikey"
	}
	k := s.keys[match]
	if k.role == conf.KeyRoleViewer && r.Method != http.MethodGet {
		return k.name, http.StatusUnauthorized, "invalid method for role viewer"
	}
	return k.name, 0, ""
}

func sum256(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// listBody is APISIX's list shape.
type listBody struct {
	Total int        `json:"total"`
	List  []itemBody `json:"list"`
}

// get answers GET /{res} and GET /{res}/{id} from memory. A list takes
// APISIX's filters (name, label, uri, filter: listFilter) and then pages
// (page, page_size); total counts what the filters kept.
func (s *Server) get(w http.ResponseWriter, r *http.Request, res *resource, id string) {
	key := func(id string) string { return s.prefix + "/" + res.name + "/" + id }
	if id != "" {
		s.mu.RLock()
		it := s.state.get(res.name, id)
		var ib itemBody
		if it != nil {
			ib = itemBody{Key: key(id), Value: it.raw, CreatedIndex: it.created, ModifiedIndex: it.rev}
		}
		s.mu.RUnlock()
		if it == nil {
			writeJSON(w, http.StatusNotFound, notFoundBody)
			return
		}
		ib.Value = masked(res.name, ib.Value)
		writeJSON(w, http.StatusOK, ib)
		return
	}
	q := r.URL.Query()
	filter, err := parseListFilter(res, q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.RLock()
	ids := s.state.sortedIDs(res.name)
	list := make([]itemBody, 0, len(ids))
	for _, id := range ids {
		it := s.state.get(res.name, id)
		if filter != nil && !filter.keep(it.raw) {
			continue
		}
		list = append(list, itemBody{Key: key(id), Value: it.raw, CreatedIndex: it.created, ModifiedIndex: it.rev})
	}
	s.mu.RUnlock()
	total := len(list) // APISIX: what the filter kept, before paging
	if q.Has("page") || q.Has("page_size") {
		page, size := 1, 10
		if v, err := strconv.Atoi(q.Get("page")); err == nil && v > 0 {
			page = v
		}
		if q.Has("page_size") {
			v, err := strconv.Atoi(q.Get("page_size"))
			if err != nil || v < 10 || v > 500 {
				writeError(w, http.StatusBadRequest, "page_size must be an integer between 10 and 500")
				return
			}
			size = v
		}
		start := min((page-1)*size, len(list))
		list = list[start:min(start+size, len(list))]
	}
	for i := range list {
		list[i].Value = masked(res.name, list[i].Value)
	}
	writeJSON(w, http.StatusOK, listBody{Total: total, List: list})
}

// hasQueryKey reports whether the raw query has key k, reading it as
// APISIX does: pairs split at '&' only (Go's parser drops a pair holding
// a ';', so "ttl=5;x" would slip past url.Values), keys percent-decoded.
func hasQueryKey(raw, k string) bool {
	for _, kv := range strings.Split(raw, "&") {
		key, _, _ := strings.Cut(kv, "=")
		if u, err := url.QueryUnescape(key); err == nil && u == k || key == k {
			return true
		}
	}
	return false
}
