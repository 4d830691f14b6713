package router

import (
	"encoding/json"
	"testing"
)

// FuzzCompileVars: any JSON must compile or fail cleanly, and a compiled
// expression must evaluate without panicking. Seeds: testdata/fuzz/FuzzCompileVars.
func FuzzCompileVars(f *testing.F) {
	f.Add([]byte(`[["arg_name","==","jack"],["arg_age","~~","^[1-9]{1,2}"]]`))
	r := varsReq(f)
	empty := &Request{}
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := CompileVars(json.RawMessage(raw))
		if err != nil {
			if e != nil {
				t.Fatalf("error %v with a non-nil expression", err)
			}
			return
		}
		e.Eval(r)
		e.Eval(empty)
	})
}
