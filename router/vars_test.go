package router

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// varsReq is the request most vars cases evaluate against.
func varsReq(t testing.TB) *Request {
	return from(newRequest(t, "POST", "/v1/chat?name=jack&age=22&x-api-name=jack&empty&Q=Up",
		"Host: API.Example.com:9080",
		"X-Canary: 1",
		"X-Api-Appkey: api-key",
		"X-Forwarded-For: 10.1.2.3",
		"Cookie: session=abc; theme=dark",
		"X-Num: 0x10",
	), "192.168.0.9")
}

func TestVarsOperators(t *testing.T) {
	r := varsReq(t)
	f := func(expr string, want bool) {
		t.Helper()
		e, err := CompileVars(json.RawMessage(expr))
		require.NoError(t, err, expr)
		assert.Equal(t, want, e.Eval(r), expr)
	}
	// ==, ~=, shorthand
	f(`[["arg_name","==","jack"]]`, true)
	f(`[["arg_name","==","Jack"]]`, false)
	f(`[["arg_name","jack"]]`, true) // [var, val] means ==
	f(`[["arg_name","rose"]]`, false)
	f(`[["arg_name","~=","rose"]]`, true)
	f(`[["arg_name","~=","jack"]]`, false)
	// numbers: == is numeric when the right side is a JSON number
	f(`[["arg_age","==",22]]`, true)
	f(`[["arg_age","==",22.0]]`, true)
	f(`[["arg_age","==","22.0"]]`, false) // string compare
	f(`[["arg_name","==",22]]`, false)    // not a number
	f(`[["arg_name","~=",22]]`, true)
	f(`[["http_x_num","==",16]]`, true) // tonumber("0x10")
	f(`[["arg_age",">",21]]`, true)
	f(`[["arg_age",">","21"]]`, true) // both sides through tonumber
	f(`[["arg_age",">",22]]`, false)
	f(`[["arg_age",">=",22]]`, true)
	f(`[["arg_age","<",22.5]]`, true)
	f(`[["arg_age","<=",21]]`, false)
	f(`[["arg_age","<=","1e2"]]`, true)
	f(`[["arg_name",">",1]]`, false) // not a number: false
	f(`[["arg_age",">","abc"]]`, false)
	// regexps
	f(`[["arg_age","~~","^[1-9]{1,2}$"]]`, true)
	f(`[["arg_name","~~","^J"]]`, false)
	f(`[["arg_name","~*","^J"]]`, true)
	f(`[["uri","~~","^/v1/"]]`, true)
	// in, has
	f(`[["arg_name","in",["rose","jack"]]]`, true)
	f(`[["arg_name","IN",["rose"]]]`, false)
	f(`[["arg_age","in",[21,22]]]`, true) // numeric elements compare numerically (sluice)
	f(`[["arg_name","has","jack"]]`, true)
	f(`[["arg_name","has","j"]]`, false)
	// ipmatch
	f(`[["remote_addr","ipmatch",["192.168.0.0/16"]]]`, true)
	f(`[["remote_addr","ipmatch","192.168.0.9"]]`, true)
	f(`[["remote_addr","ipmatch",["10.0.0.0/8","::1"]]]`, false)
	f(`[["http_x_forwarded_for","ipmatch",["10.0.0.0/8"]]]`, true)
	f(`[["arg_name","ipmatch",["10.0.0.0/8"]]]`, false)
	// negation
	f(`[["arg_name","!","==","jack"]]`, false)
	f(`[["arg_age","!","<",18]]`, true)
	f(`[["arg_missing","!","<",18]]`, true) // nil < 18 is false; ! makes it true
	f(`[["arg_name","!","in",["rose"]]]`, true)
	// missing variables are nil
	f(`[["arg_missing","==","x"]]`, false)
	f(`[["arg_missing","~=","x"]]`, true)
	f(`[["arg_missing","==",null]]`, true)
	f(`[["arg_name","~=",null]]`, true)
	f(`[["arg_missing","~~","."]]`, false)
	f(`[["arg_missing","in",["x"]]]`, false)
	f(`[["arg_empty","==",""]]`, true) // "?empty" is present and empty
	f(`[["unknown_var","==",null]]`, true)
	f(`[["post_arg.model","==","gpt-4"]]`, false)
	f(`[["post_arg_model","~=","gpt-4"]]`, true)
	// booleans and tables never equal a string
	f(`[["arg_name","==",true]]`, false)
	f(`[["arg_name","~=",true]]`, true)
	// variables
	f(`[["host","==","api.example.com"]]`, true) // lowercased, no port
	f(`[["uri","==","/v1/chat"]]`, true)
	f(`[["request_uri","~~","\\?name=jack"]]`, true)
	f(`[["request_method","==","POST"]]`, true)
	f(`[["scheme","==","http"]]`, true)
	f(`[["remote_addr","==","192.168.0.9"]]`, true)
	f(`[["http_x_canary","==","1"]]`, true)
	f(`[["http_X_CANARY","==","1"]]`, true)
	f(`[["http_x-api-appkey","==","api-key"]]`, true) // traffic-split3.t TEST 17
	f(`[["arg_x-api-name","==","jack"]]`, true)
	f(`[["arg_Q","==","Up"]]`, true)
	f(`[["cookie_theme","==","dark"]]`, true)
	f(`[["cookie_session","==","abc"]]`, true)
	f(`[["cookie_none","==",null]]`, true)
	f(`[["server_protocol","==","HTTP/1.1"]]`, true)
	f(`[["args","~~","age=22"]]`, true)
	// empty
	f(`[]`, true)
	f(``, true)
	f(`null`, true)
}

func TestVarsLogic(t *testing.T) {
	r := varsReq(t)
	f := func(expr string, want bool) {
		t.Helper()
		e, err := CompileVars(json.RawMessage(expr))
		require.NoError(t, err, expr)
		assert.Equal(t, want, e.Eval(r), expr)
	}
	// APISIX traffic-split.t TEST 11.
	f(`[["arg_name","==","jack"],["arg_age","~~","^[1-9]{1,2}"]]`, true)
	f(`[["arg_name","==","jack"],["arg_age","~~","^0"]]`, false)
	f(`[["arg_name2","in",["jack","rose"]],["arg_age","!","<",18]]`, false)
	f(`["OR",["arg_name","==","rose"],["arg_age","==","22"]]`, true)
	f(`["or",["arg_name","==","rose"],["arg_age","==","23"]]`, false)
	f(`["AND",["arg_name","==","jack"],["arg_age","==","22"]]`, true)
	f(`["!AND",["arg_name","==","jack"],["arg_age","==","22"]]`, false)
	f(`["!OR",["arg_name","==","rose"],["arg_age","==","23"]]`, true)
	// nesting
	f(`["AND",["arg_name","==","jack"],["OR",["arg_age","==","1"],["http_x_canary","==","1"]]]`, true)
	f(`["OR",["AND",["arg_name","==","rose"],["arg_age","==","22"]],["!OR",["arg_x","==","1"],["arg_y","==","2"]]]`, true)
	f(`[[["arg_name","==","jack"]],[["arg_age","==",22],["uri","~~","^/v1"]]]`, true)
	f(`[["arg_name","==","jack"],["OR",["arg_age","==","1"],["arg_age","==","2"]]]`, false)
}

func TestVarsTrafficSplitT11(t *testing.T) {
	e, err := CompileVars(json.RawMessage(`[["arg_name","==","jack"],["arg_age","~~","^[1-9]{1,2}"]]`))
	require.NoError(t, err)
	assert.True(t, e.Eval(newRequest(t, "GET", "/?name=jack&age=22")))
	assert.False(t, e.Eval(newRequest(t, "GET", "/?name=jack&age=0")))
	assert.False(t, e.Eval(newRequest(t, "GET", "/?name=rose&age=22")))
	assert.False(t, e.Eval(newRequest(t, "GET", "/")))
}

func TestVarsNilExpr(t *testing.T) {
	var e *Expr
	assert.True(t, e.Eval(varsReq(t)))
	// A Request without a parsed head: only remote_addr is known.
	e, err := CompileVars(json.RawMessage(`[["remote_addr","==","10.0.0.1"],["arg_a","==",null]]`))
	require.NoError(t, err)
	r := &Request{}
	assert.False(t, e.Eval(r))
	r = from(r, "10.0.0.1")
	assert.True(t, e.Eval(r))
}

func TestVarsInvalid(t *testing.T) {
	f := func(expr, wantErr string) {
		t.Helper()
		_, err := CompileVars(json.RawMessage(expr))
		require.Error(t, err, expr)
		assert.Equal(t, "failed to validate the 'vars' expression: "+wantErr, err.Error(), expr)
	}
	f(`[["arg_name","=","jack"]]`, "invalid operator '='")
	f(`[["arg_name",123,"jack"]]`, "invalid operator '123'") // traffic-split.t TEST 3
	f(`[["arg_name","!","=","jack"]]`, "invalid operator '='")
	f(`[["arg_name","not","==","jack"]]`, "bad 'not' expression")
	f(`[["arg_name"]]`, "invalid expression")
	f(`[["arg_name",null,"x"]]`, "invalid expression")
	f(`[["arg_name",null]]`, "invalid expression")
	f(`["arg_name","==","jack"]`, "rule should be wrapped inside brackets")
	f(`["OR",["arg_name","==","jack"]]`, "rule too short")
	f(`[[]]`, "rule too short")
	f(`{"a":1}`, "must be an array")
	f(`"x"`, "must be an array")
	f(`[["arg_name","~~","a(?=b)"]]`, "invalid regex 'a(?=b)': error parsing regexp: invalid or unsupported Perl syntax: `(?=`") // RE2: no look-arounds
	f(`[["arg_name","~~",["a"]]]`, "operator '~~' needs a string regex")
	f(`[["arg_name","in","jack"]]`, "operator 'in' needs an array")
	f(`[["remote_addr","ipmatch",["10.0.0.0/33"]]]`, "invalid ip address '10.0.0.0/33'")
	f(`[["remote_addr","ipmatch",5]]`, "operator 'ipmatch' needs an IP, a CIDR or an array of them")
	f(`[[1,"==","jack"]]`, "invalid expression: the variable name must be a string")
	f(`[["a","==","b","c","d"]]`, `invalid expression: 5 elements, want [var, op, val], [var, "!", op, val] or [var, val]`)
	f(`[["a","==","b"],"x"]`, "invalid expression")
	f(`[["a","==","b"]`, "invalid JSON: unexpected end of JSON input")
	f(`[] []`, "invalid JSON: invalid character '[' after top-level value")
	f(`[]]`, "invalid JSON: invalid character ']' after top-level value")
}

func TestParseNumber(t *testing.T) {
	f := func(in string, want float64, wantOK bool) {
		t.Helper()
		got, ok := parseNumber([]byte(in))
		assert.Equal(t, wantOK, ok, in)
		if ok {
			assert.Equal(t, want, got, in)
		}
	}
	f("22", 22, true)
	f("-22", -22, true)
	f("+7", 7, true)
	f(" 42\t", 42, true) // Lua tonumber trims white space
	f("0x10", 16, true)
	f("-0XfF", -255, true)
	f("1.5", 1.5, true)
	f(".5", 0.5, true)
	f("5.", 5, true)
	f("1e2", 100, true)
	f("1E-2", 0.01, true)
	f("123456789012345678901", 123456789012345678901, true)
	f("0.000123e3", 0.123, true)
	f("1e400", math.Inf(1), true)
	f("-1e400", math.Inf(-1), true)
	f("1e-400", 0, true)
	f("0e99999999999", 0, true)
	f("000.0001e-320", 1e-324, true)
	f("", 0, false)
	f(" ", 0, false)
	f("abc", 0, false)
	f("1a", 0, false)
	f("0x", 0, false)
	f("0xg", 0, false)
	f("1e", 0, false)
	f("1e+", 0, false)
	f(".", 0, false)
	f("-", 0, false)
	f("inf", 0, false)
	f("NaN", 0, false)
	f("1_000", 0, false)
	f("1 2", 0, false)
}
