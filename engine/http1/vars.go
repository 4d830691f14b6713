package http1

import "encoding/binary"

// Request-head errors (RFC 9112 and SPEC §7). Each is a package-level value,
// so returning one does not allocate; Status is what the gateway answers
// before it closes the connection.
var (
	ErrBadRequestLine   = &Error{400, "invalid request line"}
	ErrBadMethod        = &Error{400, "invalid method"}
	ErrBadTarget        = &Error{400, "invalid request target"}
	ErrBadVersion       = &Error{400, "invalid http version"}
	ErrVersion          = &Error{505, "http version not supported"}
	ErrBareCR           = &Error{400, "bare cr"}
	ErrBadHeaderName    = &Error{400, "invalid header name"}
	ErrSpaceBeforeColon = &Error{400, "space before colon"}
	ErrObsFold          = &Error{400, "obs-fold"}
	ErrBadHeaderValue   = &Error{400, "invalid header value"}
	ErrBadCL            = &Error{400, "invalid content-length"}
	ErrConflictingCL    = &Error{400, "conflicting content-length"}
	ErrCLWithTE         = &Error{400, "content-length with transfer-encoding"}
	ErrTEOnHTTP10       = &Error{400, "transfer-encoding on http/1.0"}
	ErrBadTE            = &Error{400, "invalid transfer-encoding"}
	ErrUnsupportedTE    = &Error{501, "unsupported transfer-encoding"}
	ErrMissingHost      = &Error{400, "missing host"}
	ErrDuplicateHost    = &Error{400, "duplicate host"}
	ErrBadHost          = &Error{400, "invalid host"}
	ErrExpectation      = &Error{417, "unsupported expectation"}
	ErrURITooLong       = &Error{414, "request line too long"} // the request line alone does not fit MaxHead
	ErrHeadTooLarge     = &Error{431, "head too large"}
	ErrTooManyHeaders   = &Error{431, "too many headers"}
)

// Chunked-body errors; the gateway answers 400 (or, for an upstream body,
// drops the connection).
var (
	ErrBadChunkSize      = &Error{400, "bad chunk size"}
	ErrChunkLineTooLong  = &Error{400, "chunk size line too long"}
	ErrBadChunkExt       = &Error{400, "bad chunk extension"}
	ErrBadChunkEnd       = &Error{400, "missing crlf after chunk data"}
	ErrBadTrailer        = &Error{400, "bad trailer"}
	ErrTrailerTooLarge   = &Error{400, "trailer too large"}
	ErrForbiddenTrailer  = &Error{400, "field not allowed in a trailer"}
	errBadStatusLine     = &Error{502, "upstream: invalid status line"}
	errBadStatus         = &Error{502, "upstream: invalid status code"}
	errUpstreamTEHTTP10  = &Error{502, "upstream: transfer-encoding on http/1.0"}
	errUpstreamCLWithTE  = &Error{502, "upstream: content-length with transfer-encoding"}
	errUpstreamTEOrder   = &Error{502, "upstream: chunked not the final transfer coding"}
	errUpstreamMalformed = &Error{502, "upstream: invalid response head"}
)

// Chunked framing limits (not configurable: no legitimate sender comes close).
const (
	maxChunkLine = 4096     // size line including extensions, terminator excluded
	maxTrailer   = 32 << 10 // whole trailer section
	maxMethod    = 20       // nginx: longer methods are rejected
)

// respErrs maps each request-head error to its ParseResponse twin with
// Status 502: a malformed upstream head is the upstream's fault, not the
// client's. Built once at init; lookups do not allocate.
var respErrs = map[*Error]*Error{}

func init() {
	for _, e := range []*Error{
		ErrBareCR, ErrBadHeaderName, ErrSpaceBeforeColon, ErrObsFold,
		ErrBadHeaderValue, ErrBadCL, ErrConflictingCL, ErrBadTE,
		ErrHeadTooLarge, ErrTooManyHeaders,
	} {
		respErrs[e] = &Error{502, "upstream: " + e.Reason}
	}
}

// respErr converts a head-scanning error into its 502 form.
func respErr(err error) error {
	if err == ErrNeedMore {
		return err
	}
	if e, ok := err.(*Error); ok {
		if r := respErrs[e]; r != nil {
			return r
		}
	}
	return errUpstreamMalformed
}

// Character classes, one bit each in class: a single 256-byte table keeps
// every per-byte check to one load and one AND.
const (
	cTchar  = 1 << iota // RFC 9110 tchar: header names, tokens
	cMethod             // nginx method bytes: A-Z, '_', '-'
	cTarget             // request-target: 0x21-0x7E except '#', and 0x80-0xFF
	cValue              // field value: HT, SP, VCHAR, obs-text
	cHost               // Host / authority: unreserved, sub-delims, ':', '[', ']', '%'
)

var class [256]uint8

// lower folds ASCII A-Z to a-z; varFold also maps '-' to '_' (nginx
// $http_x_canary names header X-Canary).
var lower, varFold [256]byte

// unhex maps a hex digit to its value and anything else to 0xFF.
var unhex [256]uint8

func init() {
	for c := 0; c < 256; c++ {
		b := byte(c)
		var f uint8
		alnum := b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
		if alnum || contains("!#$%&'*+-.^_`|~", b) {
			f |= cTchar
		}
		if b >= 'A' && b <= 'Z' || b == '_' || b == '-' {
			f |= cMethod
		}
		if b >= 0x21 && b <= 0x7E && b != '#' || b >= 0x80 {
			f |= cTarget
		}
		if b == '\t' || b >= 0x20 && b != 0x7F {
			f |= cValue
		}
		if alnum || contains(".-:[]_~%!$&'()*+,;=", b) {
			f |= cHost
		}
		class[c] = f

		lower[c] = b
		if b >= 'A' && b <= 'Z' {
			lower[c] = b + 'a' - 'A'
		}
		varFold[c] = lower[c]
		if b == '-' {
			varFold[c] = '_'
		}

		unhex[c] = 0xFF
		switch {
		case b >= '0' && b <= '9':
			unhex[c] = b - '0'
		case b >= 'a' && b <= 'f':
			unhex[c] = b - 'a' + 10
		case b >= 'A' && b <= 'F':
			unhex[c] = b - 'A' + 10
		}
	}
}

func contains(s string, b byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return true
		}
	}
	return false
}

// slash is the Path of an absolute-form target without a path.
var slash = []byte("/")

// limitsOf returns lim's limits with zero fields (or a nil lim) defaulted.
func limitsOf(lim *Limits) (maxHead, maxHeaders int) {
	maxHead, maxHeaders = DefaultMaxHead, DefaultMaxHeaders
	if lim != nil {
		if lim.MaxHead > 0 {
			maxHead = lim.MaxHead
		}
		if lim.MaxHeaders > 0 {
			maxHeaders = lim.MaxHeaders
		}
	}
	return maxHead, maxHeaders
}

// FoldEq reports whether b equals lit ignoring ASCII case; lit is
// lowercase. It does not allocate.
func FoldEq(b []byte, lit string) bool {
	if len(b) != len(lit) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower[b[i]] != lit[i] {
			return false
		}
	}
	return true
}

// trimOWS strips leading and trailing SP and HT (RFC 9110 OWS).
func trimOWS(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// cutElem splits a comma-separated list (RFC 9110 §5.6.1): elem is the first
// element with OWS trimmed, more says whether a comma followed it.
func cutElem(v []byte) (elem, rest []byte, more bool) {
	for i := 0; i < len(v); i++ {
		if v[i] == ',' {
			return trimOWS(v[:i]), v[i+1:], true
		}
	}
	return trimOWS(v), nil, false
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// validValue reports whether every byte of v may appear in a field value:
// HT, SP, VCHAR or obs-text (RFC 9110 §5.5). Eight bytes at a time: a word
// with no byte below 0x20 and none equal to 0x7F is fine as a whole; only a
// word that might hold a bad byte (often just an HT) is checked bytewise.
func validValue(v []byte) bool {
	i := 0
	for ; i+8 <= len(v); i += 8 {
		x := binary.LittleEndian.Uint64(v[i:])
		y := x ^ (lsb * 0x7F)
		if ((x-lsb*0x20)&^x|(y-lsb)&^y)&msb != 0 {
			for _, c := range v[i : i+8] {
				if class[c]&cValue == 0 {
					return false
				}
			}
		}
	}
	for ; i < len(v); i++ {
		if class[v[i]]&cValue == 0 {
			return false
		}
	}
	return true
}

// validHost reports whether v may be a Host value or an absolute-form
// authority: no white space, only RFC 3986 authority bytes (no userinfo).
func validHost(v []byte) bool {
	for _, c := range v {
		if class[c]&cHost == 0 {
			return false
		}
	}
	return true
}
