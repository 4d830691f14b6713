package model

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConsumerUsername(t *testing.T) {
	f := func(obj, want string) {
		t.Helper()
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(obj), &m))
		u, err := ConsumerUsername(m)
		if strings.HasPrefix(want, ic) {
			assert.EqualError(t, err, want, obj)
			return
		}
		require.NoError(t, err, obj)
		assert.Equal(t, want, u)
	}
	f(`{"username":"jack_1-x"}`, "jack_1-x")
	f(`{"plugins":{}}`, ic+`property "username" is required`)
	f(`{"username":7}`, ic+`property "username" validation failed: wrong type: expected string, got number`)
	f(`{"username":null}`, ic+`property "username" validation failed: wrong type: expected string, got userdata`)
	f(`{"username":""}`, ic+`property "username" validation failed: string too short, expected at least 1, got 0`)
	f(`{"username":"`+strings.Repeat("a", 101)+`"}`, ic+`property "username" validation failed: string too long, expected at most 100, got 101`)
	f(`{"username":"a b"}`, ic+`property "username" validation failed: failed to match pattern "^[a-zA-Z0-9_\\-]+$" with "a b"`)
}

func TestCheckConsumerKeyAuth(t *testing.T) {
	const p = "invalid plugins configuration: failed to check the configuration of plugin key-auth err: "
	f := func(plugins, want string) {
		t.Helper()
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(plugins), &m))
		err := CheckConsumerKeyAuth(m)
		if want == "" {
			assert.NoError(t, err, plugins)
			return
		}
		assert.EqualError(t, err, p+want, plugins)
	}
	f(`{}`, "")
	f(`{"key-auth":{"key":"k"}}`, "")
	f(`{"key-auth":{}}`, `property "key" is required`)
	f(`{"key-auth":{"key":12}}`, `property "key" validation failed: wrong type: expected string, got number`)
	f(`{"key-auth":{"key":""}}`, `property "key" validation failed: string too short, expected at least 1, got 0`)
}
