package plugin

import "bytes"

// StripPort drops ":port" from a Host value (from its last ':'); an IPv6
// literal keeps its brackets ("[::1]:8080" → "[::1]"). The result is a
// sub-slice of h; it does not allocate, and any goroutine may call it
// (phases use it for nginx's $host).
func StripPort(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' {
		if i := bytes.IndexByte(h, ']'); i >= 0 {
			return h[:i+1]
		}
		return h
	}
	if i := bytes.LastIndexByte(h, ':'); i >= 0 {
		return h[:i]
	}
	return h
}
