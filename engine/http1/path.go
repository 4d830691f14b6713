package http1

// Path normalisation. Routes match, and the upstream receives, the path in
// the form the upstream will read it in: a route guarding /admin/* must not
// be bypassed by /public/../admin or /%61dmin when a more permissive route
// matches the raw bytes (nginx matches locations on its normalised $uri,
// and APISIX routes on it, for the same reason).

// NeedsNormalize reports whether p may change under NormalizePath: it has
// a percent sign, a backslash, an empty segment or a segment starting with
// a dot. It is the cheap test run on every request.
func NeedsNormalize(p []byte) bool {
	for i, c := range p {
		switch c {
		case '%', '\\':
			return true
		case '/':
			if i+1 < len(p) && (p[i+1] == '/' || p[i+1] == '.') {
				return true
			}
		}
	}
	return false
}

// NormalizePath rewrites the origin-form path p in place and returns its
// new length (never longer): percent-encoded unreserved characters are
// decoded (RFC 3986 §6.2.2.2: "%61" is "a", "%2E" is "."), repeated
// slashes merged (nginx merge_slashes), and "." and ".." segments removed
// (RFC 3986 §5.2.4). ok is false for a path that climbs above the root
// (nginx answers 400) or that hides a dot segment behind an encoded slash
// or a backslash ("/a%2F..%2Fb", "/a\..\b"), which some upstreams decode
// into a separator and some do not. Other percent-encodings, an encoded
// slash among them, are kept as they are. A path not starting with '/'
// ("*") is left alone.
func NormalizePath(p []byte) (n int, ok bool) {
	n, _, ok = normalizePath(p)
	return n, ok
}

// NormalizeBuiltPath is NormalizePath for a path a rewrite built from
// request values: a "." or ".." segment there came from the client
// ("/models/$arg_model" with model=../../admin), so it is refused (ok
// false) rather than resolved.
func NormalizeBuiltPath(p []byte) (n int, ok bool) {
	n, dots, ok := normalizePath(p)
	return n, ok && !dots
}

// normalizePath is NormalizePath that also reports whether a dot segment
// was removed.
func normalizePath(p []byte) (n int, dots, ok bool) {
	if len(p) == 0 || p[0] != '/' {
		return len(p), false, true
	}
	// 1. decode unreserved characters
	w := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' {
			if i+2 >= len(p) || unhex[p[i+1]] >= 16 || unhex[p[i+2]] >= 16 {
				return 0, false, false // a '%' that starts no escape (nginx: 400)
			}
			h, l := unhex[p[i+1]], unhex[p[i+2]]
			d := h<<4 | l
			if d == 0 {
				// "%00": routes match the decoded path, where a NUL would
				// end "/admin%00x" at "/admin" for some upstreams (nginx: 400)
				return 0, false, false
			}
			// (not a hex digit right after a '%' or one further: it
			// could make a new escape, "%7%41" would read "%7A" to a
			// second decoding)
			if unreserved(d) && !(unhex[d] < 16 && (w >= 1 && p[w-1] == '%' || w >= 2 && p[w-2] == '%')) {
				c = d
				i += 2
			}
		}
		p[w] = c
		w++
	}
	p = p[:w]
	// 2. merge slashes and remove dot segments, writing segments at w
	w = 0
	for i := 0; i < len(p); {
		// p[i] == '/': the segment runs to the next '/'
		j := i + 1
		for j < len(p) && p[j] != '/' {
			j++
		}
		seg := p[i+1 : j]
		last := j == len(p)
		if hidesDotSegment(seg) {
			return 0, true, false
		}
		switch {
		case len(seg) == 0 && !last: // "//": merged
		case len(seg) == 1 && seg[0] == '.':
			dots = true
			if last {
				p[w] = '/'
				w++
			}
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			dots = true
			if w == 0 {
				return 0, true, false // above the root
			}
			for w--; w > 0 && p[w] != '/'; w-- { // drop the previous segment
			}
			if last {
				p[w] = '/'
				w++
			}
		default:
			p[w] = '/'
			w++
			w += copy(p[w:], seg) // w <= i+1: never overtakes the reader
		}
		i = j
	}
	if w == 0 { // everything resolved away: the root
		p[0] = '/'
		w = 1
	}
	return w, dots, true
}

// hidesDotSegment reports whether seg, split at encoded slashes and
// backslashes (raw or encoded), has a "." or ".." part.
func hidesDotSegment(seg []byte) bool {
	split := false
	for i := range seg {
		if sepLen(seg, i) > 0 {
			split = true
			break
		}
	}
	if !split {
		return false
	}
	start := 0
	for i := 0; i <= len(seg); {
		k := 0
		if i < len(seg) {
			if k = sepLen(seg, i); k == 0 {
				i++
				continue
			}
		}
		if part := seg[start:i]; len(part) == 1 && part[0] == '.' || len(part) == 2 && part[0] == '.' && part[1] == '.' {
			return true
		}
		if k == 0 {
			return false
		}
		i += k
		start = i
	}
	return false
}

// sepLen is the length of a separator some upstreams decode at seg[i]: a
// backslash, or an encoded slash or backslash; 0 if none.
func sepLen(seg []byte, i int) int {
	switch {
	case seg[i] == '\\':
		return 1
	case seg[i] == '%' && i+2 < len(seg) && (seg[i+1] == '2' && lower[seg[i+2]] == 'f' || seg[i+1] == '5' && lower[seg[i+2]] == 'c'):
		return 3
	}
	return 0
}

// unreserved reports RFC 3986's unreserved characters.
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// MatchDiffers reports whether AppendMatchPath would change p: it holds
// a percent-encoded byte or a backslash.
func MatchDiffers(p []byte) bool {
	for i, c := range p {
		if c == '\\' || c == '%' && i+2 < len(p) && unhex[p[i+1]] < 16 && unhex[p[i+2]] < 16 && !isCtl(unhex[p[i+1]]<<4|unhex[p[i+2]]) {
			return true
		}
	}
	return false
}

// isCtl reports a control byte: AppendMatchPath leaves it encoded, so the
// match form (the uri variable, which plugins may write into a header)
// never holds a CR or LF.
func isCtl(c byte) bool { return c < 0x20 || c == 0x7f }

// AppendMatchPath appends to dst the form of the normalised path p that
// routes match: percent-encodings (but those of control bytes) decoded
// once, as in APISIX's $uri
// (nginx's decoded path: "/%C3%BCn" matches a route "/ün", "/a%20b" one
// "/a b"), an encoded slash or backslash and a raw backslash read as '/'
// ("/admin%2Fkeys" matches /admin/*, so a route's plugins cannot be
// skipped by encoding its separator), repeated slashes merged. p keeps
// its encodings for the upstream.
func AppendMatchPath(dst, p []byte) []byte {
	start := len(dst)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) && unhex[p[i+1]] < 16 && unhex[p[i+2]] < 16 && !isCtl(unhex[p[i+1]]<<4|unhex[p[i+2]]) {
			c = unhex[p[i+1]]<<4 | unhex[p[i+2]]
			i += 2
		}
		if c == '\\' {
			c = '/'
		}
		if c == '/' && len(dst) > start && dst[len(dst)-1] == '/' {
			continue
		}
		dst = append(dst, c)
	}
	return dst
}
