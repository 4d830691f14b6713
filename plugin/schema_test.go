package plugin

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJSONKind(t *testing.T) {
	f := func(raw, want, wantInt string) {
		t.Helper()
		assert.Equal(t, want, JSONKind([]byte(raw)), raw)
		assert.Equal(t, wantInt, JSONKindInt([]byte(raw)), raw)
	}
	f(`{"a":1}`, "object", "object")
	f(` [1]`, "array", "array")
	f(`"x"`, "string", "string")
	f(`true`, "boolean", "boolean")
	f(`false`, "boolean", "boolean")
	f(`null`, "null", "null")
	f(``, "null", "null")
	f(" \t\n", "null", "null")
	f(`1`, "number", "integer")
	f(` -7 `, "number", "integer")
	f(`1.5`, "number", "number")
	f(`1.0`, "number", "integer")
	f(`1e2`, "number", "integer")
	f(`1e3`, "number", "integer")
	f(`99999999999999999999`, "number", "number") // beyond int64
}

func TestSchemaErrors(t *testing.T) {
	const p = "failed to check the configuration of plugin x err: "
	assert.EqualError(t, WrongType("x", "", "object", "array"), p+"wrong type: expected object, got table")
	assert.EqualError(t, WrongType("x", "k", "string", "number"), p+`property "k" validation failed: wrong type: expected string, got number`)

	_, err := Object("x", []byte(`[1]`))
	assert.EqualError(t, err, p+"wrong type: expected object, got table")
	_, err = Object("x", []byte(`null`))
	assert.EqualError(t, err, p+"wrong type: expected object, got userdata")
	m, err := Object("x", []byte(`{"s":"v","b":true,"n":1,"z":null}`))
	require.NoError(t, err)

	s, ok, err := StringProp("x", m, "s")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "v", s)
	_, ok, err = StringProp("x", m, "absent")
	assert.NoError(t, err)
	assert.False(t, ok)
	_, _, err = StringProp("x", m, "n")
	assert.EqualError(t, err, p+`property "n" validation failed: wrong type: expected string, got number`)
	_, _, err = StringProp("x", m, "z")
	assert.EqualError(t, err, p+`property "z" validation failed: wrong type: expected string, got userdata`)

	b, ok, err := BoolProp("x", m, "b")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.True(t, b)
	_, ok, err = BoolProp("x", map[string]json.RawMessage{}, "b")
	assert.NoError(t, err)
	assert.False(t, ok)
	_, _, err = BoolProp("x", m, "s")
	assert.EqualError(t, err, p+`property "s" validation failed: wrong type: expected boolean, got string`)
}

func TestValidHeaderName(t *testing.T) {
	for _, ok := range []string{"X-Api-Key", "a", "!#$%&'*+-.^_`|~", "x(y)"} {
		assert.True(t, ValidHeaderName(ok), ok)
	}
	for _, bad := range []string{"", "a b", "a:b", "a\x7f", "\xc3\xa9", "a\tb"} {
		assert.False(t, ValidHeaderName(bad), bad)
	}
}

func TestStripPort(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		assert.Equal(t, want, string(StripPort([]byte(in))), in)
	}
	f("example.com", "example.com")
	f("example.com:8080", "example.com")
	f("[::1]:8080", "[::1]")
	f("[::1]", "[::1]")
	f("[::1", "[::1")
	f("a:b:c", "a:b") // the last ':'
	f("", "")
}
