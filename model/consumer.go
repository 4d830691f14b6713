package model

import (
	"encoding/json"
	"errors"
	"regexp"
	"unicode/utf8"
)

// UsernamePattern is the syntax of a consumer's username (APISIX
// schema_def.lua consumer); a username also has at most 100 characters.
var UsernamePattern = regexp.MustCompile(`^[a-zA-Z0-9_\-]+$`)

// ConsumerUsername returns the username of a consumer object m, checked as
// APISIX's consumer schema does: required, a string of 1 to 100 characters
// that matches UsernamePattern. Errors are *Error values.
func ConsumerUsername(m map[string]json.RawMessage) (string, error) {
	raw, ok := m["username"]
	if !ok {
		return "", &Error{Reason: `property "username" is required`}
	}
	var u string
	if k := JSONKind(raw); k != "string" || json.Unmarshal(raw, &u) != nil {
		return "", &Error{Path: []string{"username"}, Reason: "wrong type: expected string, got " + GotType(k)}
	}
	switch n := utf8.RuneCountInString(u); {
	case n < 1:
		return "", &Error{Path: []string{"username"}, Reason: tooShort(1, 0)}
	case n > 100:
		return "", &Error{Path: []string{"username"}, Reason: tooLong(100, n)}
	case !UsernamePattern.MatchString(u):
		return "", &Error{Path: []string{"username"}, Reason: patternReason(UsernamePattern.String(), u)}
	}
	return u, nil
}

// CheckConsumerKeyAuth checks the key-auth configuration among a
// consumer's plugins against key-auth's consumer schema (key: a non-empty
// string), with the Admin API's text for a plugin error; nil when the
// consumer has no key-auth.
func CheckConsumerKeyAuth(plugins map[string]json.RawMessage) error {
	ka, ok := plugins["key-auth"]
	if !ok {
		return nil
	}
	var conf map[string]json.RawMessage
	_ = json.Unmarshal(ka, &conf)
	raw, ok := conf["key"]
	bad := func(reason string) error {
		return errors.New("invalid plugins configuration: failed to check the configuration of plugin key-auth err: " + reason)
	}
	var key string
	switch {
	case !ok:
		return bad(`property "key" is required`)
	case JSONKind(raw) != "string" || json.Unmarshal(raw, &key) != nil:
		return bad(`property "key" validation failed: wrong type: expected string, got ` + GotType(JSONKind(raw)))
	case key == "":
		return bad(`property "key" validation failed: ` + tooShort(1, 0))
	}
	return nil
}
