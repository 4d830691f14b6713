package http1

import "strconv"

// AppendRequest appends r as a request head to dst and returns the extended
// slice: "Method Target HTTP/M.m\r\n", every field of r.Headers as
// "Name: Value\r\n" in order, then "\r\n". It writes r as it is: the caller
// edits Headers (drops hop-by-hop fields, rewrites Host) before. It
// allocates only when dst must grow.
func AppendRequest(dst []byte, r *Request) []byte {
	dst = append(dst, r.Method...)
	dst = append(dst, ' ')
	dst = append(dst, r.Target...)
	dst = append(dst, " HTTP/"...)
	dst = appendVersion(dst, r.Major, r.Minor)
	dst = append(dst, "\r\n"...)
	return appendFields(dst, r.Headers)
}

// AppendResponse appends r as a response head to dst and returns the
// extended slice: "HTTP/M.m SSS Reason\r\n" (the SP before an empty reason
// kept, as RFC 9112 §4 asks), the fields, then "\r\n". It allocates only
// when dst must grow.
func AppendResponse(dst []byte, r *Response) []byte {
	dst = append(dst, "HTTP/"...)
	dst = appendVersion(dst, r.Major, r.Minor)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(r.Status), 10)
	dst = append(dst, ' ')
	dst = append(dst, r.Reason...)
	dst = append(dst, "\r\n"...)
	return appendFields(dst, r.Headers)
}

func appendVersion(dst []byte, major, minor uint8) []byte {
	dst = strconv.AppendUint(dst, uint64(major), 10)
	dst = append(dst, '.')
	return strconv.AppendUint(dst, uint64(minor), 10)
}

func appendFields(dst []byte, hs []Header) []byte {
	for i := range hs {
		dst = append(dst, hs[i].Name...)
		dst = append(dst, ": "...)
		dst = append(dst, hs[i].Value...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}
