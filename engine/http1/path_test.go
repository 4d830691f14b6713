package http1

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNormalizePath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"/", "/", true},
		{"/chat/completions", "/chat/completions", true},
		{"/public/../admin", "/admin", true},
		{"/public/./x", "/public/x", true},
		{"/a/b/../../c/", "/c/", true},
		{"/a/..", "/", true},
		{"/a/.", "/a/", true},
		{"/a//b///c", "/a/b/c", true},
		{"//a", "/a", true},
		{"/a/", "/a/", true},
		{"/%61dmin", "/admin", true},
		{"/public/%2e%2E/admin", "/admin", true},
		{"/a/%7Euser", "/a/~user", true},
		{"/a/b%20c", "/a/b%20c", true},                       // not unreserved: kept
		{"/models/org%2Fmodel", "/models/org%2Fmodel", true}, // an encoded slash in a name: kept
		{"/a/.hidden/..x/...", "/a/.hidden/..x/...", true},
		{"/a%2", "", false}, // a '%' that starts no escape, and %00: 400, as nginx
		{"/a%", "", false},
		{"/a%zz", "", false},
		{"/admin%00/keys", "", false},
		{"/a%7%41", "", false},
		{"*", "*", true},
		{"/..", "", false},
		{"/../a", "", false},
		{"/a/../..", "", false},
		{"/public/..%2Fadmin", "", false},
		{"/public%2F..%2Fadmin", "", false},
		{"/public%5c..%5cadmin", "", false},
		{"/public\\..\\admin", "", false},
		{"/a/%2e%2e%2fb", "", false},
	} {
		p := []byte(tc.in)
		n, ok := NormalizePath(p)
		assert.Equal(t, tc.ok, ok, tc.in)
		if tc.ok {
			assert.Equal(t, tc.want, string(p[:n]), tc.in)
			if tc.in != tc.want {
				assert.True(t, NeedsNormalize([]byte(tc.in)), tc.in)
			}
		}
	}
}

// FuzzNormalizePath: the result is never longer, starts with '/', is a
// fixed point, has no dot or empty segment, and NeedsNormalize is false
// only for paths NormalizePath leaves unchanged.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/%2e%2E/x", "//a//b/", "/a%2F..%2Fb", "/a/./b/..", "/x%41y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) == 0 || s[0] != '/' {
			return
		}
		p := []byte(s)
		n, ok := NormalizePath(p)
		if !NeedsNormalize([]byte(s)) && (!ok || string(p[:n]) != s) {
			t.Fatalf("%q changed though NeedsNormalize said no: %q %v", s, p[:n], ok)
		}
		if !ok {
			return
		}
		out := append([]byte(nil), p[:n]...)
		if n > len(s) || n == 0 || out[0] != '/' {
			t.Fatalf("%q -> %q", s, out)
		}
		for _, bad := range []string{"//", "/./", "/../"} {
			if bytes.Contains(out, []byte(bad)) {
				t.Fatalf("%q -> %q has %q", s, out, bad)
			}
		}
		if bytes.HasSuffix(out, []byte("/.")) || bytes.HasSuffix(out, []byte("/..")) {
			t.Fatalf("%q -> %q ends in a dot segment", s, out)
		}
		again := append([]byte(nil), out...)
		m, ok2 := NormalizePath(again)
		if !ok2 || string(again[:m]) != string(out) {
			t.Fatalf("%q -> %q -> %q %v: not a fixed point", s, out, again[:m], ok2)
		}
	})
}

func TestAppendMatchPath(t *testing.T) {
	for in, want := range map[string]string{
		"/admin/x":            "/admin/x",
		"/admin%2Fx":          "/admin/x",
		"/admin%2fx%5Cy":      "/admin/x/y",
		"/admin\\x":           "/admin/x",
		"/a%2F%2F/b":          "/a/b",
		"/models/org%2Fmodel": "/models/org/model",
		"/%C3%BCn%C3%AF":      "/ünï",
		"/a%20b":              "/a b",
		"/a%252F":             "/a%2F", // decoded once
		"/a%zz%4":             "/a%zz%4",
		"/%2F%2f/%5c%5C\\x":   "/x",
		"/a%0D%0Ab%09%7F":     "/a%0D%0Ab%09%7F", // control bytes stay encoded
	} {
		assert.Equal(t, want, string(AppendMatchPath(nil, []byte(in))), in)
		assert.Equal(t, in != want, MatchDiffers([]byte(in)), in)
	}
}
