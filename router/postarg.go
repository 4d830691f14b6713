package router

import (
	"bytes"

	"github.com/sluice-gw/sluice/engine/http1"
)

// postArg returns the value of post_arg.NAME in a request body: a field of a
// JSON object body (NAME may be a dotted path into nested objects:
// post_arg.model, post_arg.metadata.tier), else a field of an
// application/x-www-form-urlencoded body. A JSON string's value is returned
// without its quotes and as written (escapes are not decoded); numbers,
// booleans, objects and arrays as their JSON text; null as nil. It does not
// allocate; the result borrows from body.
func postArg(body, name []byte) []byte {
	if len(body) == 0 || len(name) == 0 {
		return nil
	}
	b := skipWS(body, 0)
	if b < len(body) && body[b] == '{' {
		return jsonPath(body, name)
	}
	return formValue(body, name)
}

// jsonPath follows the dotted path through nested objects of doc.
func jsonPath(doc, path []byte) []byte {
	v := doc
	for len(path) > 0 {
		seg := path
		if i := bytes.IndexByte(path, '.'); i >= 0 {
			seg, path = path[:i], path[i+1:]
		} else {
			path = nil
		}
		var ok bool
		if v, ok = objectField(v, seg); !ok {
			return nil
		}
	}
	if len(v) == 0 || bytes.Equal(v, []byte("null")) {
		return nil
	}
	if v[0] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

// objectField returns the raw JSON value of key in the object that starts
// doc (after white space).
func objectField(doc, key []byte) ([]byte, bool) {
	i := skipWS(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		return nil, false
	}
	i = skipWS(doc, i+1)
	if i < len(doc) && doc[i] == '}' {
		return nil, false
	}
	for i < len(doc) {
		if doc[i] != '"' {
			return nil, false
		}
		end := skipString(doc, i)
		if end < 0 {
			return nil, false
		}
		k := doc[i+1 : end-1]
		i = skipWS(doc, end)
		if i >= len(doc) || doc[i] != ':' {
			return nil, false
		}
		i = skipWS(doc, i+1)
		vend := skipValue(doc, i, 0)
		if vend < 0 {
			return nil, false
		}
		if bytes.Equal(k, key) {
			return doc[i:vend], true
		}
		i = skipWS(doc, vend)
		if i >= len(doc) || doc[i] != ',' {
			return nil, false
		}
		i = skipWS(doc, i+1)
	}
	return nil, false
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] ('"'),
// or -1.
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// maxJSONDepth bounds nesting while skipping values.
const maxJSONDepth = 64

// skipValue returns the index after the JSON value at b[i], or -1.
func skipValue(b []byte, i, depth int) int {
	if i >= len(b) || depth > maxJSONDepth {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		closer := byte('}')
		if b[i] == '[' {
			closer = ']'
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1
		}
		for i < len(b) {
			if closer == '}' {
				if b[i] != '"' {
					return -1
				}
				if i = skipString(b, i); i < 0 {
					return -1
				}
				i = skipWS(b, i)
				if i >= len(b) || b[i] != ':' {
					return -1
				}
				i = skipWS(b, i+1)
			}
			if i = skipValue(b, i, depth+1); i < 0 {
				return -1
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return -1
			}
			if b[i] == closer {
				return i + 1
			}
			if b[i] != ',' {
				return -1
			}
			i = skipWS(b, i+1)
		}
		return -1
	default: // number, true, false, null
		j := i
		for j < len(b) {
			c := b[j]
			if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
				break
			}
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}

// formValue returns the raw (not unescaped) value of name in an
// application/x-www-form-urlencoded body.
func formValue(body, name []byte) []byte { return http1.ArgValue(body, name) }
