// Package http1 owns the HTTP/1.1 wire format for sluice's data plane: the
// request-head and response-head parsers, the chunked-body scanner, limits and
// the writers that serialise heads again.
//
// Everything here is pure and single-goroutine: the engine calls it from an
// event loop. Parsers never allocate; the slices they return point into the
// caller's buffer and live as long as those bytes do.
package http1

import "errors"

// ErrNeedMore means buf holds only part of a head (or of a chunk's framing);
// wait for more bytes and call again with the same start.
var ErrNeedMore = errors.New("http1: need more data")

// Error is a parse failure with the HTTP status the gateway must answer
// (400, 414, 417, 431, 501, 505 for a request head or a chunked body; 502 for a
// response head). Values are package-level (the ErrX variables) so returning
// one does not allocate; compare them with == or errors.Is.
type Error struct {
	Status int
	Reason string
}

func (e *Error) Error() string { return "http1: " + e.Reason }

// StatusOf returns the HTTP status for a parse error: e.Status for *Error,
// 400 for anything else. It does not allocate for an unwrapped *Error.
func StatusOf(err error) int {
	if e, ok := err.(*Error); ok {
		return e.Status // fast path: errors.As makes its target escape
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 400
}

// Header is one header field. Name and Value are sub-slices of the parsed
// buffer; Value has surrounding optional white space trimmed.
type Header struct {
	Name  []byte
	Value []byte
}

// Limits bound what a parser accepts. Zero fields take the defaults.
type Limits struct {
	// MaxHead is the largest head in bytes, request line (or status line)
	// and headers included, final CRLF included; larger → 431 (requests),
	// or 414 when the request line alone does not fit.
	// Default 32 KiB (nginx large_client_header_buffers 4 8k ≈ APISIX 32k).
	MaxHead int
	// MaxHeaders is the largest number of header fields; more → 431.
	// Default 100.
	MaxHeaders int
}

// Defaults for Limits' zero fields.
const (
	DefaultMaxHead    = 32 << 10
	DefaultMaxHeaders = 100
)

// BodyKind says how a message body is delimited.
type BodyKind uint8

const (
	BodyNone       BodyKind = iota // no body
	BodyLength                     // Content-Length bytes
	BodyChunked                    // Transfer-Encoding: chunked
	BodyUntilClose                 // responses only: read until the upstream closes
)

// Request is a parsed request head. Every slice points into the buffer given
// to ParseRequest. Reset keeps the capacity of Headers, so a Request reused
// across requests does not allocate.
type Request struct {
	Method []byte // e.g. "GET"; validated: 1-20 of A-Z, '_' or '-'
	Target []byte // raw request-target as sent
	Path   []byte // Target up to '?' (for absolute-form targets, the path part; "*" for OPTIONS *)
	Query  []byte // after the first '?', without it; nil when there is none
	// MatchPath is Path as routes and variables read it ($uri):
	// percent-decoded once (AppendMatchPath); nil when that is Path.
	MatchPath []byte
	Major     uint8 // HTTP major version (1)
	Minor     uint8 // HTTP minor version (0 or 1)

	Headers []Header // all fields in order, including Host, Content-Length, ...

	Host          []byte   // Host header value (or the authority of an absolute-form target)
	ContentLength int64    // -1 when absent
	Body          BodyKind // BodyNone, BodyLength or BodyChunked
	KeepAlive     bool     // HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive"
	Expect100     bool     // "Expect: 100-continue" on HTTP/1.1 (any other expectation is a 417 error)
	Upgrade       bool     // HTTP/1.1 "Connection: upgrade" together with an Upgrade header
	Connection    []byte   // raw value of the last Connection field (its tokens name hop-by-hop fields); nil if absent
	ConnFields    int      // how many Connection fields there are (more than one: walk Headers for their tokens)
	HeadLen       int      // length of the head in bytes, as returned by ParseRequest
}

// Response is a parsed response head; slices point into the parsed buffer.
type Response struct {
	Major, Minor  uint8
	Status        int
	Reason        []byte
	Headers       []Header
	ContentLength int64  // -1 when absent
	Chunked       bool   // Transfer-Encoding ends in chunked
	TECodings     int    // transfer codings listed (more than 1 with Chunked: another coding under it, such as gzip)
	Close         bool   // "Connection: close", or HTTP/1.0 without "Connection: keep-alive"
	Connection    []byte // raw value of the last Connection field; nil if absent
	ConnFields    int    // how many Connection fields there are (more than one: walk Headers for their tokens)
	HeadLen       int    // length of the head in bytes, as returned by ParseResponse
}
