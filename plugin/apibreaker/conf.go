package apibreaker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// conf is api-breaker's configuration after APISIX's schema check, with the
// schema's defaults filled in. Its JSON form (json.Marshal) is canonical: it
// identifies the configuration across table builds.
type conf struct {
	BreakResponseCode    int      `json:"break_response_code"`
	BreakResponseBody    *string  `json:"break_response_body,omitempty"`
	BreakResponseHeaders []header `json:"break_response_headers,omitempty"`
	MaxBreakerSec        int64    `json:"max_breaker_sec"`
	Unhealthy            struct {
		HTTPStatuses []int `json:"http_statuses"`
		Failures     int64 `json:"failures"`
	} `json:"unhealthy"`
	Healthy struct {
		HTTPStatuses []int `json:"http_statuses"`
		Successes    int64 `json:"successes"`
	} `json:"healthy"`
}

type header struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// schemaError is a validation message in lua-resty-jsonschema's wording
// (without the "failed to check the configuration of plugin" prefix).
type schemaError string

func (e schemaError) Error() string { return string(e) }

func propErr(name string, err error) error {
	return schemaError(fmt.Sprintf("property %q validation failed: %s", name, err))
}

func itemErr(i int, err error) error {
	return schemaError(fmt.Sprintf("failed to validate item %d: %s", i+1, err))
}

// luaType names a decoded JSON value as Lua's type() does after cjson.
func luaType(v any) string {
	switch v.(type) {
	case map[string]any, []any:
		return "table"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	}
	return "userdata" // cjson.null
}

func wrongType(want string, v any) error {
	return schemaError("wrong type: expected " + want + ", got " + luaType(v))
}

// integer checks a JSON integer within [lo, hi] (hi < 0: no maximum).
func integer(v any, lo, hi int64) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, wrongType("integer", v)
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(string(n), 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) >= 1<<62 {
			return 0, wrongType("integer", v)
		}
		i = int64(f)
	}
	if i < lo {
		return 0, schemaError(fmt.Sprintf("expected %d to be at least %d", i, lo))
	}
	if hi >= 0 && i > hi {
		return 0, schemaError(fmt.Sprintf("expected %d to be at most %d", i, hi))
	}
	return i, nil
}

// statuses checks an http_statuses array: at least one item, each an
// integer in [lo, hi], unique.
func statuses(v any, lo, hi int64) ([]int, error) {
	arr, ok := v.([]any)
	if !ok {
		if m, isObj := v.(map[string]any); isObj && len(m) == 0 {
			arr = nil // cjson decodes {} and [] alike
		} else {
			return nil, wrongType("array", v)
		}
	}
	if len(arr) < 1 {
		return nil, schemaError("expect array to have at least 1 items")
	}
	out := make([]int, len(arr))
	for i, it := range arr {
		n, err := integer(it, lo, hi)
		if err != nil {
			return nil, itemErr(i, err)
		}
		for j := range i {
			if out[j] == int(n) {
				return nil, schemaError(fmt.Sprintf("expected unique items but items %d and %d are equal", j+1, i+1))
			}
		}
		out[i] = int(n)
	}
	return out, nil
}

func object(v any) (map[string]any, error) {
	switch o := v.(type) {
	case map[string]any:
		return o, nil
	case []any:
		if len(o) == 0 {
			return map[string]any{}, nil
		}
	}
	return nil, wrongType("object", v)
}

func str(v any, minLen int) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", wrongType("string", v)
	}
	if len(s) < minLen {
		return "", schemaError(fmt.Sprintf("string too short, expected at least %d, got %d", minLen, len(s)))
	}
	return s, nil
}

// decodeConf checks raw against APISIX's api-breaker schema
// (apisix/plugins/api-breaker.lua, policy "unhealthy-count") and fills in
// the defaults. Unknown fields are accepted, as APISIX's schema does not
// forbid them.
func decodeConf(raw []byte) (*conf, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, schemaError("invalid JSON: " + err.Error())
	}
	if dec.More() {
		return nil, schemaError("invalid JSON: trailing data")
	}
	if _, err := dec.Token(); err == nil {
		return nil, schemaError("invalid JSON: trailing data")
	}
	top, err := object(v)
	if err != nil {
		return nil, err
	}
	c := &conf{MaxBreakerSec: 300}
	c.Unhealthy.HTTPStatuses, c.Unhealthy.Failures = []int{500}, 3
	c.Healthy.HTTPStatuses, c.Healthy.Successes = []int{200}, 3

	code, ok := top["break_response_code"]
	if !ok {
		return nil, schemaError(`property "break_response_code" is required`)
	}
	n, err := integer(code, 200, 599)
	if err != nil {
		return nil, propErr("break_response_code", err)
	}
	c.BreakResponseCode = int(n)

	if b, ok := top["break_response_body"]; ok {
		s, err := str(b, 0)
		if err != nil {
			return nil, propErr("break_response_body", err)
		}
		c.BreakResponseBody = &s
	}
	if h, ok := top["break_response_headers"]; ok {
		hs, err := headers(h)
		if err != nil {
			return nil, propErr("break_response_headers", err)
		}
		c.BreakResponseHeaders = hs
	}
	if m, ok := top["max_breaker_sec"]; ok {
		if c.MaxBreakerSec, err = integer(m, 3, -1); err != nil {
			return nil, propErr("max_breaker_sec", err)
		}
	}
	if p, ok := top["policy"]; ok {
		s, err := str(p, 0)
		if err != nil {
			return nil, propErr("policy", err)
		}
		switch s {
		case "unhealthy-count":
		case "unhealthy-ratio":
			return nil, propErr("policy", errors.New(`"unhealthy-ratio" is not supported by sluice; use "unhealthy-count"`))
		default:
			return nil, propErr("policy", errors.New(`matches none of the enum values`))
		}
	}
	if u, ok := top["unhealthy"]; ok {
		o, err := object(u)
		if err != nil {
			return nil, propErr("unhealthy", err)
		}
		if s, ok := o["http_statuses"]; ok {
			if c.Unhealthy.HTTPStatuses, err = statuses(s, 500, 599); err != nil {
				return nil, propErr("unhealthy", propErr("http_statuses", err))
			}
		}
		if f, ok := o["failures"]; ok {
			if c.Unhealthy.Failures, err = integer(f, 1, -1); err != nil {
				return nil, propErr("unhealthy", propErr("failures", err))
			}
		}
	}
	if h, ok := top["healthy"]; ok {
		o, err := object(h)
		if err != nil {
			return nil, propErr("healthy", err)
		}
		if s, ok := o["http_statuses"]; ok {
			if c.Healthy.HTTPStatuses, err = statuses(s, 200, 499); err != nil {
				return nil, propErr("healthy", propErr("http_statuses", err))
			}
		}
		if f, ok := o["successes"]; ok {
			if c.Healthy.Successes, err = integer(f, 1, -1); err != nil {
				return nil, propErr("healthy", propErr("successes", err))
			}
		}
	}
	return c, nil
}

func headers(v any) ([]header, error) {
	arr, ok := v.([]any)
	if !ok {
		if m, isObj := v.(map[string]any); isObj && len(m) == 0 {
			return nil, nil
		}
		return nil, wrongType("array", v)
	}
	out := make([]header, 0, len(arr))
	for i, it := range arr {
		o, err := object(it)
		if err != nil {
			return nil, itemErr(i, err)
		}
		var h header
		for _, f := range [...]struct {
			name string
			dst  *string
		}{{"key", &h.Key}, {"value", &h.Value}} {
			fv, ok := o[f.name]
			if !ok {
				return nil, itemErr(i, schemaError(fmt.Sprintf("property %q is required", f.name)))
			}
			s, err := str(fv, 1)
			if err != nil {
				return nil, itemErr(i, propErr(f.name, err))
			}
			if !validHeader(s, f.name == "key") {
				return nil, itemErr(i, propErr(f.name, errors.New("invalid character in header "+f.name)))
			}
			if f.name == "key" {
				switch strings.ToLower(s) {
				case "content-length", "transfer-encoding", "connection":
					// sluice frames the answer itself: a second length
					// would desync a keep-alive client
					return nil, itemErr(i, propErr(f.name, fmt.Errorf("header %q cannot be set by sluice (it frames the response)", s)))
				}
			}
			*f.dst = s
		}
		out = append(out, h)
	}
	return out, nil
}

// validHeader refuses what cannot be written into a response head: a name
// must be an RFC 9110 token; a value must not hold CR, LF or NUL.
func validHeader(s string, name bool) bool {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if name {
			if !isTokenChar(ch) {
				return false
			}
		} else if ch == '\r' || ch == '\n' || ch == 0 {
			return false
		}
	}
	return true
}

func isTokenChar(ch byte) bool {
	switch {
	case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
		return true
	}
	switch ch {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
