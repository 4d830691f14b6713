package http1

// STUBS: replaced by the real implementation (request.go, response.go,
// chunked.go, write.go). Signatures here are the contract.

// Reset clears r for reuse and keeps Headers' capacity.
func (r *Request) Reset() { panic("todo") }

// ParseRequest parses the request head at the start of buf into r and returns
// its length. It returns ErrNeedMore while the head is incomplete (and not yet
// over lim.MaxHead), or an *Error. It does not allocate once r.Headers has
// capacity for lim.MaxHeaders.
func ParseRequest(r *Request, buf []byte, lim *Limits) (int, error) { panic("todo") }

// Header returns the value of the first field named name (ASCII
// case-insensitive), or nil.
func (r *Request) Header(name []byte) []byte { panic("todo") }

// HeaderVar returns the value of the header an nginx variable suffix names:
// "x_canary" matches "X-Canary" ('_' matches '-', case-insensitive); nil if absent.
func (r *Request) HeaderVar(name []byte) []byte { panic("todo") }

// Arg returns the raw (not percent-decoded) value of query argument name, or
// nil when absent; an argument without '=' has an empty non-nil value.
func (r *Request) Arg(name []byte) []byte { panic("todo") }

// Cookie returns the value of cookie name from the Cookie header(s), or nil.
func (r *Request) Cookie(name []byte) []byte { panic("todo") }

// Reset clears r for reuse and keeps Headers' capacity.
func (r *Response) Reset() { panic("todo") }

// ParseResponse parses a response head (status line and headers) at the
// start of buf. Same contract as ParseRequest.
func ParseResponse(r *Response, buf []byte, lim *Limits) (int, error) { panic("todo") }

// BodyKind says how r's body is delimited given whether the request was HEAD:
// none for HEAD, 1xx, 204, 304; chunked; Content-Length; else until close.
func (r *Response) BodyKind(headRequest bool) BodyKind { panic("todo") }

// Chunked scans a chunked body incrementally. The zero value is ready; Reset
// reuses it.
type Chunked struct {
	state     uint8
	remaining int64 // bytes left in the current chunk's data
	lineLen   int   // bytes of the current size line / trailer line seen
	trailers  int   // trailer bytes seen
}

// Reset readies c for a new body.
func (c *Chunked) Reset() { *c = Chunked{} }

// Next consumes chunked framing and data from buf. It returns n, the number
// of bytes of buf consumed (all belong to the body, framing included), data,
// the chunk payload within buf[:n] (possibly empty; at most one contiguous
// run per call), and done once the last chunk and the trailer section are
// consumed. n == 0 with err == nil means more bytes are needed. Call it in a
// loop until n == 0 or done. Errors are *Error with Status 400.
func (c *Chunked) Next(buf []byte) (n int, data []byte, done bool, err error) { panic("todo") }

// AppendRequest writes r back out as a head (request line, headers, CRLF).
func AppendRequest(dst []byte, r *Request) []byte { panic("todo") }

// AppendResponse writes r back out as a head.
func AppendResponse(dst []byte, r *Response) []byte { panic("todo") }
