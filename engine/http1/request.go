package http1

import "bytes"

// Reset clears r for reuse and keeps Headers' capacity. The old Headers
// entries are not zeroed: they are overwritten by the next parse.
func (r *Request) Reset() {
	*r = Request{Headers: r.Headers[:0], ContentLength: -1}
}

// ParseRequest parses the request head at the start of buf into r and returns
// its length, leading empty lines included. It calls r.Reset first. r's
// slices point into buf and are valid as long as those bytes are (for the
// engine: until they are discarded from the gnet inbound buffer).
//
// It returns ErrNeedMore while the head is incomplete and buf holds no more
// than lim.MaxHead bytes, or an *Error whose Status the gateway answers
// (400, 414, 417, 431, 501, 505); see the ErrX values. A nil lim means defaults.
// It does not allocate once r.Headers has capacity for lim.MaxHeaders.
// It is pure: any goroutine may call it on its own r.
func ParseRequest(r *Request, buf []byte, lim *Limits) (int, error) {
	r.Reset()
	maxHead, maxHeaders := limitsOf(lim)
	// Only the first maxHead bytes can hold a head we accept; scanning no
	// further also bounds the work a slow-loris head costs per call.
	w := buf
	if len(w) > maxHead {
		w = w[:maxHead]
	}

	// RFC 9112 §2.2: ignore empty lines before the request-line.
	pos := 0
	for pos < len(w) {
		if w[pos] == '\n' {
			pos++
			continue
		}
		if w[pos] != '\r' {
			break
		}
		if pos+1 == len(w) {
			return 0, moreOrTooLarge(len(buf), maxHead)
		}
		if w[pos+1] != '\n' {
			return 0, ErrBareCR
		}
		pos += 2
	}

	e := bytes.IndexByte(w[pos:], '\n')
	if e < 0 {
		if len(buf) > maxHead && pos < len(w) {
			// RFC 9112 §3: a request line longer than the server parses
			// is a 414, not a 431 (nginx: "client sent too long URI").
			return 0, ErrURITooLong
		}
		return 0, moreOrTooLarge(len(buf), maxHead)
	}
	line := w[pos : pos+e]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	authority, err := r.parseRequestLine(line)
	if err != nil {
		return 0, err
	}

	hs, n, err := scanFields(w, pos+e+1, maxHeaders, r.Headers)
	r.Headers = hs
	if err != nil {
		if err == ErrNeedMore {
			return 0, moreOrTooLarge(len(buf), maxHead)
		}
		return 0, err
	}
	if err := r.interpret(authority); err != nil {
		return 0, err
	}
	r.HeadLen = n
	return n, nil
}

// parseRequestLine parses "method SP target SP version" (RFC 9112 §3) into r
// and returns the authority of an absolute-form target (nil otherwise).
func (r *Request) parseRequestLine(line []byte) ([]byte, error) {
	i := 0
	for i < len(line) && class[line[i]]&cMethod != 0 {
		i++
	}
	if i == len(line) {
		if i == 0 || i > maxMethod {
			return nil, ErrBadMethod
		}
		return nil, ErrBadRequestLine
	}
	if i == 0 || i > maxMethod || line[i] != ' ' {
		return nil, ErrBadMethod
	}
	r.Method = line[:i]

	j := i + 1
	for j < len(line) && class[line[j]]&cTarget != 0 {
		j++
	}
	if j == len(line) || j == i+1 {
		return nil, ErrBadRequestLine // no version, or two spaces
	}
	if line[j] != ' ' {
		if line[j] == '\r' {
			return nil, ErrBareCR
		}
		return nil, ErrBadTarget
	}
	target := line[i+1 : j]
	r.Target = target

	v := line[j+1:]
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' || v[5]-'0' > 9 || v[7]-'0' > 9 {
		if bytes.IndexByte(v, '\r') >= 0 {
			return nil, ErrBareCR
		}
		return nil, ErrBadVersion
	}
	switch {
	case v[5] == '1' && (v[7] == '1' || v[7] == '0'):
		r.Major, r.Minor = 1, v[7]-'0'
	case v[5] >= '2':
		return nil, ErrVersion // RFC 9110 §15.6.6
	default:
		return nil, ErrBadVersion
	}

	// RFC 9112 §3.2: origin-form, absolute-form, asterisk-form (OPTIONS
	// only). Authority-form (CONNECT) is not proxied.
	var authority []byte
	switch {
	case target[0] == '/':
	case len(target) == 1 && target[0] == '*':
		if string(r.Method) != "OPTIONS" {
			return nil, ErrBadTarget
		}
		r.Path = target
		return nil, nil
	default:
		var rest []byte
		switch {
		case len(target) > 7 && FoldEq(target[:7], "http://"):
			rest = target[7:]
		case len(target) > 8 && FoldEq(target[:8], "https://"):
			rest = target[8:]
		default:
			return nil, ErrBadTarget
		}
		a := 0
		for a < len(rest) && rest[a] != '/' && rest[a] != '?' {
			a++
		}
		if a == 0 || !validHost(rest[:a]) {
			return nil, ErrBadTarget
		}
		authority = rest[:a]
		target = rest[a:]
		if len(target) == 0 || target[0] == '?' {
			r.Path = slash
			if len(target) > 0 {
				r.Query = target[1:]
			}
			return authority, nil
		}
	}
	if q := bytes.IndexByte(target, '?'); q >= 0 {
		r.Path, r.Query = target[:q], target[q+1:]
	} else {
		r.Path = target
	}
	return authority, nil
}

// interpret applies the semantics of the fields ParseRequest collected:
// framing (Content-Length, Transfer-Encoding), Host, Connection, Expect.
func (r *Request) interpret(authority []byte) error {
	var (
		hosts     int
		te        bool // a Transfer-Encoding field was seen
		teCodings int  // codings across all Transfer-Encoding fields
		teChunked bool // the first coding is chunked
		teEmpty   bool // an empty list element
		upgrade   bool // an Upgrade field was seen
		conn      connTokens
	)
	http11 := r.Minor == 1
	for i := range r.Headers {
		name, v := r.Headers[i].Name, r.Headers[i].Value
		switch len(name) {
		case 4:
			if FoldEq(name, "host") {
				// RFC 9112 §3.2: exactly one Host with a valid value.
				if hosts++; hosts > 1 {
					return ErrDuplicateHost
				}
				if !validHost(v) {
					return ErrBadHost
				}
				r.Host = v
			}
		case 6:
			// RFC 9110 §10.1.1: an unknown expectation may be answered with
			// 417; a 1.0 request's Expect is ignored.
			if http11 && FoldEq(name, "expect") {
				if !FoldEq(v, "100-continue") {
					return ErrExpectation
				}
				r.Expect100 = true
			}
		case 7:
			if FoldEq(name, "upgrade") {
				upgrade = true
			}
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
					return ErrBadCL
				case cl == clConflict, r.ContentLength >= 0 && cl != r.ContentLength:
					return ErrConflictingCL // RFC 9112 §6.3 item 5
				}
				r.ContentLength = cl
			}
		case 17:
			if FoldEq(name, "transfer-encoding") {
				te = true
				for more := true; more; {
					var e []byte
					e, v, more = cutElem(v)
					if len(e) == 0 {
						teEmpty = true
						continue
					}
					if teCodings++; teCodings == 1 {
						teChunked = FoldEq(e, "chunked")
					}
				}
			}
		}
	}

	if te {
		switch {
		case !http11:
			return ErrTEOnHTTP10 // RFC 9112 §6.1: framing is faulty
		case r.ContentLength >= 0:
			return ErrCLWithTE // RFC 9112 §6.1: smuggling guard
		case teEmpty:
			return ErrBadTE
		case teCodings != 1 || !teChunked:
			// The only coding a gateway can frame without decoding is a
			// lone chunked; RFC 9112 §6.1 says 501 for the rest.
			return ErrUnsupportedTE
		}
		r.Body = BodyChunked
	} else if r.ContentLength > 0 {
		r.Body = BodyLength
	}

	if authority != nil {
		r.Host = authority // RFC 9112 §3.2.2: the target's authority wins
	} else if http11 && hosts == 0 {
		return ErrMissingHost
	}

	if http11 {
		r.KeepAlive = conn&connClose == 0
		r.Upgrade = upgrade && conn&connUpgrade != 0 // RFC 9110 §7.8: 1.1 only
	} else {
		r.KeepAlive = conn&connKeepAlive != 0 && conn&connClose == 0
	}
	return nil
}

// Header returns the value of the first field named name (ASCII
// case-insensitive), or nil. The value borrows r's buffer. It does not
// allocate.
func (r *Request) Header(name []byte) []byte { return findHeader(r.Headers, name) }

// findHeader returns the value of the first of hs named name (ASCII
// case-insensitive), or nil.
func findHeader(hs []Header, name []byte) []byte {
	for i := range hs {
		if h := hs[i].Name; len(h) == len(name) && equalFold(h, name) {
			return hs[i].Value
		}
	}
	return nil
}

// HeaderVar returns the value of the header an nginx variable suffix names:
// "x_canary" matches "X-Canary" ('_' matches '-', case-insensitive); nil if
// absent. It does not allocate.
func (r *Request) HeaderVar(name []byte) []byte {
	if i := r.HeaderVarIndex(name); i >= 0 {
		return r.Headers[i].Value
	}
	return nil
}

// VarNameEq reports whether header name h is the one an nginx variable
// suffix names ("x_canary" for X-Canary: '_' matches '-', any case).
func VarNameEq(h, name []byte) bool {
	if len(h) != len(name) {
		return false
	}
	for j := range h {
		if varFold[h[j]] != varFold[name[j]] {
			return false
		}
	}
	return true
}

// ArgValueFold is ArgValue with the name compared ASCII
// case-insensitively (nginx $arg_NAME).
func ArgValueFold(list, name []byte) []byte { return argValue(list, name, true) }

// HeaderVarIndex is HeaderVar's match as an index into r.Headers, or -1.
func (r *Request) HeaderVarIndex(name []byte) int {
	for i := range r.Headers {
		h := r.Headers[i].Name
		if len(h) != len(name) {
			continue
		}
		j := 0
		for j < len(h) && varFold[h[j]] == varFold[name[j]] {
			j++
		}
		if j == len(h) {
			return i
		}
	}
	return -1
}

// Arg returns the raw (not percent-decoded) value of the first query
// argument named exactly name, or nil when absent; an argument without '='
// has an empty non-nil value. It does not allocate.
func (r *Request) Arg(name []byte) []byte { return argValue(r.Query, name, false) }

// ArgFold is Arg with the name compared ASCII case-insensitively, as
// nginx's $arg_NAME reads the query.
func (r *Request) ArgFold(name []byte) []byte { return argValue(r.Query, name, true) }

// ArgValue is Arg for any "a=1&b=2" list (a query string or a form body).
func ArgValue(list, name []byte) []byte { return argValue(list, name, false) }

func argValue(list, name []byte, fold bool) []byte {
	for len(list) > 0 {
		var arg []byte
		arg, list = CutArg(list)
		if k, v := SplitArg(arg); fold && EqualFold(k, name) || !fold && bytes.Equal(k, name) {
			return v
		}
	}
	return nil
}

// AppendUnescapeArg appends the decoded form of a query argument's raw
// name or value v to dst: %XX decoded, '+' read as a space (as nginx's
// ngx.req.get_uri_args does); a '%' not followed by two hex digits stays.
func AppendUnescapeArg(dst, v []byte) []byte {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '+':
			dst = append(dst, ' ')
		case c == '%' && i+2 < len(v) && unhex[v[i+1]] < 16 && unhex[v[i+2]] < 16:
			dst = append(dst, unhex[v[i+1]]<<4|unhex[v[i+2]])
			i += 2
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// CutArg returns the first '&'-separated argument of list and the rest.
func CutArg(list []byte) (arg, rest []byte) {
	if i := bytes.IndexByte(list, '&'); i >= 0 {
		return list[:i], list[i+1:]
	}
	return list, nil
}

// SplitArg splits "k=v" into its name and value; an argument without '='
// has an empty non-nil value.
func SplitArg(arg []byte) (name, value []byte) {
	if i := bytes.IndexByte(arg, '='); i >= 0 {
		return arg[:i], arg[i+1:]
	}
	return arg, arg[len(arg):]
}

// Cookie returns the value of the first cookie named name in the Cookie
// field(s) ("a=1; b=2", RFC 6265 §5.4), or nil. Pairs are trimmed of SP and
// HT; the value is returned raw (quotes kept). It does not allocate.
func (r *Request) Cookie(name []byte) []byte {
	for i := range r.Headers {
		if !FoldEq(r.Headers[i].Name, "cookie") {
			continue
		}
		c := r.Headers[i].Value
		for len(c) > 0 {
			p := c
			if j := bytes.IndexByte(c, ';'); j >= 0 {
				p, c = c[:j], c[j+1:]
			} else {
				c = nil
			}
			p = trimOWS(p)
			eq := bytes.IndexByte(p, '=')
			if eq < 0 {
				continue
			}
			if k := trimOWS(p[:eq]); len(k) == len(name) && bytes.Equal(k, name) {
				return trimOWS(p[eq+1:])
			}
		}
	}
	return nil
}

// EqualFold reports whether a and b are equal ignoring ASCII case. It does
// not allocate.
func EqualFold(a, b []byte) bool { return len(a) == len(b) && equalFold(a, b) }

// equalFold reports whether a and b, of equal length, match ignoring ASCII
// case.
func equalFold(a, b []byte) bool {
	for i := range a {
		if lower[a[i]] != lower[b[i]] {
			return false
		}
	}
	return true
}
