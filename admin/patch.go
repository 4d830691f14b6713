package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// decodeAny decodes one JSON value with numbers kept as json.Number, so
// that a value written back keeps its numbers exactly.
func decodeAny(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("invalid character after top-level value")
	}
	return v, nil
}

// encode writes v as compact JSON without HTML escaping (a stored "<" stays
// "<").
func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// mergePatch applies an RFC 7386 JSON merge patch: objects merge
// recursively, null deletes a member, anything else (arrays included)
// replaces.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = mergePatch(t[k], v)
	}
	return t
}

// patchPath sets the subtree at path (APISIX core.table.patch: missing
// intermediate objects are created; a path through a value that is not an
// object is an error; null removes the field).
func patchPath(target any, path []string, v any) (any, error) {
	root, ok := target.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("invalid sub-path: /%s", strings.Join(path, "/"))
	}
	cur := root
	for i, seg := range path[:len(path)-1] {
		if seg == "" {
			return nil, fmt.Errorf("invalid sub-path: /%s", strings.Join(path, "/"))
		}
		next, exists := cur[seg]
		if !exists || next == nil {
			m := map[string]any{}
			cur[seg] = m
			cur = m
			continue
		}
		m, ok := next.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("invalid sub-path: /%s", strings.Join(path[:i+1], "/"))
		}
		cur = m
	}
	last := path[len(path)-1]
	if last == "" {
		return nil, fmt.Errorf("invalid sub-path: /%s", strings.Join(path, "/"))
	}
	if v == nil {
		delete(cur, last) // null removes the field, as assigning nil does in Lua
	} else {
		cur[last] = v
	}
	return root, nil
}
