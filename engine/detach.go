package engine

import (
	"slices"
	"unsafe"

	"github.com/sluice-gw/sluice/engine/http1"
)

// detach copies the request head r was parsed from (src, of which r's
// slices are sub-slices) into dst and re-points r's slices at the copy, so
// the request outlives gnet's buffer (Peek data is valid only until
// Discard or the end of the callback). A slice that is not part of src
// (the path, once normalised into a scratch buffer, and its match form) is
// copied after it.
// It returns the grown dst and does not allocate once dst has room.
func detach(r *http1.Request, src, dst []byte) []byte {
	base := uintptr(unsafe.Pointer(unsafe.SliceData(src)))
	end := base + uintptr(len(src))
	inSrc := func(s []byte) bool {
		p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
		return p >= base && p+uintptr(len(s)) <= end && (p < end || len(s) == 0)
	}
	extra := 0
	if r.Path != nil && !inSrc(r.Path) {
		extra = len(r.Path)
	}
	if r.MatchPath != nil && !inSrc(r.MatchPath) {
		extra += len(r.MatchPath)
	}
	dst = slices.Grow(dst[:0], len(src)+extra) // no move while slices point in
	dst = append(dst, src...)
	move := func(s []byte) []byte {
		if s == nil {
			return nil
		}
		if !inSrc(s) { // copied after src (room was made above)
			at := len(dst)
			dst = append(dst, s...)
			return dst[at:len(dst):len(dst)]
		}
		off := int(uintptr(unsafe.Pointer(unsafe.SliceData(s))) - base)
		return dst[off : off+len(s) : off+len(s)]
	}
	r.Method = move(r.Method)
	r.Target = move(r.Target)
	r.Path = move(r.Path)
	r.MatchPath = move(r.MatchPath)
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
