package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/sluice-gw/sluice/model"
)

// This file holds what several plugins' Compile steps share to check a
// configuration against an APISIX schema and word the error as APISIX
// does. Everything here runs on the builder goroutine; it may allocate.

// JSONKind names the JSON type of a value as the schema errors do:
// "object", "array", "string", "boolean", "null" or "number", by its first
// byte after white space; empty input is "null". Integers are "number"
// too (Lua has one number type: APISIX says "got number").
func JSONKind(raw []byte) string {
	if k := model.JSONKind(bytes.TrimSpace(raw)); k != "" {
		return k
	}
	return "null"
}

// JSONKindInt is JSONKind, except that a number whose value is a 64-bit
// integer (1, 1.0, 1e2: model.JSONInteger) is "integer" (prometheus words
// its errors so).
func JSONKindInt(raw []byte) string {
	k := JSONKind(raw)
	if k == "number" {
		if _, ok := model.JSONInteger(raw); ok {
			return "integer"
		}
	}
	return k
}

// WrongType is plugin name's error for a value of JSON kind got where the
// schema wants want (got is printed as APISIX does: model.GotType): `property "<prop>" validation failed: wrong type: expected
// <want>, got <got>`, or without the property part when prop is "" (the
// configuration itself).
func WrongType(name, prop, want, got string) error {
	got = model.GotType(got)
	if prop == "" {
		return Errorf(name, "wrong type: expected %s, got %s", want, got)
	}
	return Errorf(name, "property %q validation failed: wrong type: expected %s, got %s", prop, want, got)
}

// Object decodes plugin name's configuration raw, which must be a JSON
// object (WrongType otherwise).
func Object(name string, raw []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, WrongType(name, "", "object", JSONKind(raw))
	}
	return m, nil
}

// StringProp reads the optional string property prop of plugin name's
// configuration m: ok is false when m has no prop; a value that is not a
// string (null included) is WrongType.
func StringProp(name string, m map[string]json.RawMessage, prop string) (s string, ok bool, err error) {
	v, ok := m[prop]
	if !ok {
		return "", false, nil
	}
	if JSONKind(v) != "string" || json.Unmarshal(v, &s) != nil {
		return "", false, WrongType(name, prop, "string", JSONKind(v))
	}
	return s, true, nil
}

// BoolProp reads the optional boolean property prop of plugin name's
// configuration m, as StringProp reads a string.
func BoolProp(name string, m map[string]json.RawMessage, prop string) (b, ok bool, err error) {
	v, ok := m[prop]
	if !ok {
		return false, false, nil
	}
	if JSONKind(v) != "boolean" || json.Unmarshal(v, &b) != nil {
		return false, false, WrongType(name, prop, "boolean", JSONKind(v))
	}
	return b, true, nil
}

// CheckEditableHeader checks the name of a request header a plugin sets,
// adds or removes: APISIX's validate_header_field, and not one of the
// headers sluice owns — Host (APISIX does not send a Host set this way
// either) and the ones that frame the request body. The errors read as
// the text after `property "headers" validation failed: `.
func CheckEditableHeader(n string) error {
	if n == "" {
		return errors.New("invalid field length in header")
	}
	if !ValidHeaderName(n) {
		return errors.New("invalid field character in header")
	}
	switch strings.ToLower(n) {
	case "host":
		return errors.New(`header "Host" cannot be changed here`)
	case "content-length", "transfer-encoding", "connection":
		return fmt.Errorf("header %q cannot be changed by sluice (it frames the request)", n)
	}
	return nil
}

// CheckHeaderValue is APISIX's validate_header_value: no control
// characters (CR and LF included: they would split the request head) and
// no bytes >= 0x7f.
func CheckHeaderValue(s string) error {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return errors.New("invalid value character in header")
		}
	}
	return nil
}

// ValidHeaderName reports whether s may name a request header: APISIX's
// validate_header_field, at least one byte, each from '!' to '~' except
// ':'.
func ValidHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; b <= ' ' || b >= 0x7f || b == ':' {
			return false
		}
	}
	return true
}
