package engine

import (
	"unsafe"

	"github.com/sluice-gw/sluice/engine/http1"
)

// detach copies the request head r was parsed from (src, of which r's
// slices are sub-slices) into dst and re-points r's slices at the copy, so
// the request outlives gnet's buffer (Peek data is valid only until
// Discard or the end of the callback). It returns the grown dst and does
// not allocate once dst has room.
func detach(r *http1.Request, src, dst []byte) []byte {
	dst = append(dst[:0], src...)
	base := uintptr(unsafe.Pointer(unsafe.SliceData(src)))
	end := base + uintptr(len(src))
	move := func(s []byte) []byte {
		if s == nil {
			return nil
		}
		p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
		if p < base || p > end {
			return s // not from src (cannot happen for a parsed head)
		}
		off := int(p - base)
		return dst[off : off+len(s) : off+len(s)]
	}
	r.Method = move(r.Method)
	r.Target = move(r.Target)
	r.Path = move(r.Path)
	r.Query = move(r.Query)
	r.Host = move(r.Host)
	r.Connection = move(r.Connection)
	for i := range r.Headers {
		h := &r.Headers[i]
		h.Name = move(h.Name)
		h.Value = move(h.Value)
	}
	return dst
}
