package http1

import "bytes"

// Reset clears r for reuse and keeps Headers' capacity.
func (r *Response) Reset() {
	*r = Response{Headers: r.Headers[:0], ContentLength: -1}
}

// ParseResponse parses a response head (status line and headers) at the
// start of buf into r and returns its length; it calls r.Reset first. r's
// slices point into buf. It returns ErrNeedMore while the head is
// incomplete (and buf holds no more than lim.MaxHead bytes); every other
// error is an *Error with Status 502, since a malformed upstream head is
// the upstream's fault. It does not allocate once r.Headers has capacity
// for lim.MaxHeaders.
//
// Field rules are the request's (obs-fold, space before colon, bad bytes
// and differing Content-Lengths are errors). Transfer-Encoding makes the
// body chunked when its last coding is chunked (RFC 9112 §6.3 item 4: any
// other final coding means read until close). chunked listed twice, or
// before another coding, is refused (RFC 9112 §6.1: it is applied at most
// once, and last); Transfer-Encoding together with Content-Length is
// refused rather than resolved, as is Transfer-Encoding on HTTP/1.0, so
// sluice never guesses an upstream's framing.
func ParseResponse(r *Response, buf []byte, lim *Limits) (int, error) {
	r.Reset()
	maxHead, maxHeaders := limitsOf(lim)
	w := buf
	if len(w) > maxHead {
		w = w[:maxHead]
	}
	e := bytes.IndexByte(w, '\n')
	if e < 0 {
		return 0, respErr(moreOrTooLarge(len(buf), maxHead))
	}
	line := w[:e]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	// RFC 9112 §4: HTTP-version SP 3DIGIT SP [ reason-phrase ]; the SP
	// before an empty reason is commonly omitted, so it is optional here.
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[7]-'0' > 1 || line[8] != ' ' {
		return 0, errBadStatusLine
	}
	d0, d1, d2 := line[9]-'0', line[10]-'0', line[11]-'0'
	if d0 > 9 || d1 > 9 || d2 > 9 {
		return 0, errBadStatusLine
	}
	r.Status = int(d0)*100 + int(d1)*10 + int(d2)
	if r.Status < 100 || r.Status > 599 {
		return 0, errBadStatus
	}
	r.Major, r.Minor = 1, line[7]-'0'
	r.Reason = line[12:]
	if len(line) > 12 {
		if line[12] != ' ' || !validValue(line[13:]) {
			return 0, errBadStatusLine
		}
		r.Reason = line[13:]
	}

	hs, n, err := scanFields(w, e+1, maxHeaders, r.Headers)
	r.Headers = hs
	if err != nil {
		if err == ErrNeedMore {
			err = moreOrTooLarge(len(buf), maxHead)
		}
		return 0, respErr(err)
	}

	var (
		te   bool
		conn connTokens
	)
	for i := range r.Headers {
		name, v := r.Headers[i].Name, r.Headers[i].Value
		switch len(name) {
		case 10:
			if FoldEq(name, "connection") {
				r.Connection = v
				r.ConnFields++
				conn |= connectionTokens(v)
			}
		case 14:
			if FoldEq(name, "content-length") {
				cl := contentLength(v)
				switch {
				case cl == clBad:
					return 0, respErr(ErrBadCL)
				case cl == clConflict, r.ContentLength >= 0 && cl != r.ContentLength:
					return 0, respErr(ErrConflictingCL)
				}
				r.ContentLength = cl
			}
		case 17:
			if FoldEq(name, "transfer-encoding") {
				te = true
				// Later fields append codings, so the last non-empty
				// element of the last field is the final coding.
				for more := true; more; {
					var c []byte
					c, v, more = cutElem(v)
					if len(c) > 0 {
						if r.Chunked {
							// RFC 9112 §6.1: chunked is applied at most
							// once and is the final coding
							return 0, errUpstreamTEOrder
						}
						r.Chunked = FoldEq(c, "chunked")
						r.TECodings++
					}
				}
			}
		}
	}
	if te {
		if r.Minor == 0 {
			return 0, errUpstreamTEHTTP10
		}
		if r.ContentLength >= 0 {
			return 0, errUpstreamCLWithTE
		}
	}
	r.Close = conn&connClose != 0 || r.Minor == 0 && conn&connKeepAlive == 0
	r.HeadLen = n
	return n, nil
}

// BodyKind says how r's body is delimited given whether the request was
// HEAD (RFC 9112 §6.3): none for HEAD, 1xx, 204 and 304; chunked;
// Content-Length (none when 0); else until the upstream closes.
func (r *Response) BodyKind(headRequest bool) BodyKind {
	switch {
	case headRequest, r.Status < 200, r.Status == 204, r.Status == 304:
		return BodyNone
	case r.Chunked:
		return BodyChunked
	case r.ContentLength > 0:
		return BodyLength
	case r.ContentLength == 0:
		return BodyNone
	}
	return BodyUntilClose
}

// Header returns the value of the first header named name (ASCII
// case-insensitive), or nil. It does not allocate.
func (r *Response) Header(name []byte) []byte { return findHeader(r.Headers, name) }
