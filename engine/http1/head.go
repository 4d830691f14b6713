package http1

import "bytes"

// scanFields parses the field lines of a head from w[pos:] up to and
// including the empty line that ends it, appending each field to hs. It
// returns the grown hs and the index just past the empty line, ErrNeedMore
// when w ends first, or an *Error (request flavour; ParseResponse maps it).
//
// Rules (RFC 9112 §5, SPEC §7): a line ends in CRLF or a bare LF; a field
// name is a non-empty token followed directly by ':'; a line that starts with
// SP or HT is obs-fold and rejected; the value has OWS trimmed and holds only
// HT, SP, VCHAR and obs-text, so a bare CR or a NUL in it is rejected.
func scanFields(w []byte, pos, maxHeaders int, hs []Header) ([]Header, int, error) {
	for {
		e := bytes.IndexByte(w[pos:], '\n')
		if e < 0 {
			return hs, 0, ErrNeedMore
		}
		line := w[pos : pos+e]
		pos += e + 1
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			return hs, pos, nil
		}
		if len(hs) >= maxHeaders {
			return hs, 0, ErrTooManyHeaders
		}
		k := 0
		for k < len(line) && class[line[k]]&cTchar != 0 {
			k++
		}
		if k == len(line) || line[k] != ':' || k == 0 {
			return hs, 0, fieldLineError(line, k)
		}
		v := line[k+1:]
		for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
			v = v[1:]
		}
		for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
			v = v[:len(v)-1]
		}
		if !validValue(v) {
			if bytes.IndexByte(v, '\r') >= 0 {
				return hs, 0, ErrBareCR
			}
			return hs, 0, ErrBadHeaderValue
		}
		hs = append(hs, Header{Name: line[:k], Value: v})
	}
}

// fieldLineError names what is wrong with a field line whose name ends at k.
func fieldLineError(line []byte, k int) error {
	switch {
	case k == 0 && len(line) > 0 && (line[0] == ' ' || line[0] == '\t'):
		return ErrObsFold // RFC 9112 §5.2: reject, do not unfold
	case k < len(line) && (line[k] == ' ' || line[k] == '\t') && k > 0:
		return ErrSpaceBeforeColon // RFC 9112 §5.1: MUST reject
	case bytes.IndexByte(line, '\r') >= 0:
		return ErrBareCR
	}
	return ErrBadHeaderName
}

// moreOrTooLarge is the answer for a head that has not ended yet: wait for
// more bytes, unless buf already holds more than maxHead of them.
func moreOrTooLarge(bufLen, maxHead int) error {
	if bufLen > maxHead {
		return ErrHeadTooLarge
	}
	return ErrNeedMore
}

// contentLength parses a Content-Length value: 1*DIGIT with at most 18
// digits (so it fits an int64), or a comma list of identical such values
// (RFC 9110 §8.6 allows "5, 5"). It returns clBad or clConflict on error.
func contentLength(v []byte) int64 {
	if len(v) == 0 {
		return clBad
	}
	n := int64(-1)
	for more := true; more; {
		var e []byte
		e, v, more = cutElem(v)
		if len(e) == 0 || len(e) > 18 {
			return clBad
		}
		var x int64
		for _, c := range e {
			if c-'0' > 9 {
				return clBad
			}
			x = x*10 + int64(c-'0')
		}
		if n >= 0 && x != n {
			return clConflict
		}
		n = x
	}
	return n
}

const (
	clBad      = -2
	clConflict = -3
)

// connTokens is what the Connection field's tokens say.
type connTokens uint8

const (
	connClose connTokens = 1 << iota
	connKeepAlive
	connUpgrade
)

// connectionTokens scans a Connection value (a comma list, case-insensitive).
func connectionTokens(v []byte) connTokens {
	var t connTokens
	for more := true; more; {
		var e []byte
		e, v, more = cutElem(v)
		switch len(e) {
		case 5:
			if FoldEq(e, "close") {
				t |= connClose
			}
		case 7:
			if FoldEq(e, "upgrade") {
				t |= connUpgrade
			}
		case 10:
			if FoldEq(e, "keep-alive") {
				t |= connKeepAlive
			}
		}
	}
	return t
}
