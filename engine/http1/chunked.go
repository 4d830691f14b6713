package http1

// Chunked scans a chunked body (RFC 9112 §7.1) incrementally: the bytes may
// arrive in pieces split anywhere. The engine uses it both to relay a body
// unchanged (it only needs to learn where the body ends) and to decode one
// (it collects data). The zero value is ready; Reset reuses it. A Chunked
// belongs to one connection and one goroutine (its event loop).
type Chunked struct {
	// Request makes trailer fields that must not be trailers an error
	// (ErrForbiddenTrailer): set it for a request body. Reset clears it.
	Request   bool
	state     uint8
	digits    uint8 // hex digits of the current size seen
	nameLen   uint8 // bytes of the current trailer name seen (len(name)+1: longer)
	name      [24]byte
	remaining int64 // chunk size being read, then bytes left of its data
	lineLen   int   // bytes of the current size line seen
	trailers  int   // trailer bytes seen
	err       error // set in state csFailed
}

// Scanner states. The zero state expects the first byte of a size line.
const (
	csSize        uint8 = iota // hex digits of the chunk size
	csSizeBWS                  // white space after the size (a ";" must follow)
	csExt                      // chunk extensions, skipped up to CRLF
	csSizeLF                   // CR seen at the end of the size line
	csData                     // remaining bytes of chunk data
	csDataCR                   // CRLF after the data
	csDataLF                   // CR seen after the data
	csTrailer                  // start of a trailer line, or the final empty line
	csTrailerName              // a trailer field's name, up to its colon
	csTrailerLn                // a trailer field's value
	csTrailerLF                // CR seen at the end of a trailer line
	csEndLF                    // CR of the final empty line seen
	csDone                     // the body has ended
	csFailed                   // an error was found; err repeats it
)

// Reset readies c for a new body.
func (c *Chunked) Reset() { *c = Chunked{} }

// Next consumes chunked framing and data from buf. It returns n, the number
// of bytes of buf consumed (all belong to the body, framing included), data,
// the chunk payload within buf[:n] (possibly empty; at most one contiguous
// run per call), and done once the last chunk and the trailer section are
// consumed; bytes after that are never consumed (they are the next message).
// n == 0 with err == nil means more bytes are needed (or, once done, that
// there is nothing more to scan). Call it in a loop until n == 0 or done.
//
// Rules (RFC 9112 §7.1, strictly: the body is relayed as it came, so the
// next hop must read the framing exactly as sluice did): a size is 1-16
// hex digits that fit an int64, optionally followed by ";" extensions
// (white space only before a ";"); the size line, extensions included, is
// at most 4096 bytes; every line ends in CRLF (a bare LF is where lenient
// parsers disagree); chunk data is followed by CRLF. Trailer lines must be
// field lines (a token, a colon, a value without control bytes) and total
// at most 32 KiB; with Request, none may be a field RFC 9110 §6.5.1 keeps
// out of trailers or one the gateway sets (forbiddenTrailer): the body is
// relayed with its trailers, and an upstream that merges them into the
// header section would otherwise read a Host, an Authorization or an
// X-Forwarded-For the gateway never checked. Errors are *Error with
// Status 400; an error found after
// a data run is reported on the next call, so data is never lost with the
// error. Next does not allocate; data borrows buf.
func (c *Chunked) Next(buf []byte) (n int, data []byte, done bool, err error) {
	switch c.state {
	case csDone:
		return 0, nil, true, nil
	case csFailed:
		return 0, nil, false, c.err
	}
	i := 0
	for ; i < len(buf); i++ {
		b := buf[i]
		switch c.state {
		case csData:
			if data != nil {
				return i, data, false, nil // one run per call
			}
			k := len(buf) - i
			if int64(k) > c.remaining {
				k = int(c.remaining)
			}
			data = buf[i : i+k]
			if c.remaining -= int64(k); c.remaining == 0 {
				c.state = csDataCR
			}
			i += k - 1

		case csSize:
			if v := unhex[b]; v < 16 {
				if c.digits == 16 || c.remaining>>59 != 0 {
					return c.fail(i, data, ErrBadChunkSize)
				}
				c.remaining = c.remaining<<4 | int64(v)
				c.digits++
				continue
			}
			if c.digits == 0 {
				return c.fail(i, data, ErrBadChunkSize)
			}
			switch b {
			case '\r':
				c.state = csSizeLF
			case ';':
				c.state = csExt
			case ' ', '\t':
				c.state = csSizeBWS
			default: // a bare LF too
				return c.fail(i, data, ErrBadChunkSize)
			}

		case csSizeBWS:
			if c.lineLen++; c.lineLen+int(c.digits) > maxChunkLine {
				return c.fail(i, data, ErrChunkLineTooLong)
			}
			switch b {
			case ' ', '\t':
			case ';':
				c.state = csExt
			default: // white space is only allowed before an extension
				return c.fail(i, data, ErrBadChunkSize)
			}

		case csExt:
			if c.lineLen++; c.lineLen+int(c.digits) > maxChunkLine {
				return c.fail(i, data, ErrChunkLineTooLong)
			}
			switch {
			case b == '\r':
				c.state = csSizeLF
			case class[b]&cValue == 0:
				return c.fail(i, data, ErrBadChunkExt) // LF, NUL, other CTL
			}

		case csSizeLF:
			if b != '\n' {
				return c.fail(i, data, ErrBareCR)
			}
			c.endSizeLine()

		case csDataCR:
			if b != '\r' {
				return c.fail(i, data, ErrBadChunkEnd)
			}
			c.state = csDataLF

		case csDataLF:
			if b != '\n' {
				return c.fail(i, data, ErrBadChunkEnd)
			}
			c.state = csSize

		case csTrailer:
			switch {
			case b == '\r':
				c.state = csEndLF
			case class[b]&cTchar != 0:
				c.state = csTrailerName
				c.nameLen = 0
				c.nameByte(b)
			default:
				return c.fail(i, data, ErrBadTrailer)
			}
			if c.trailers++; c.trailers > maxTrailer {
				return c.fail(i, data, ErrTrailerTooLarge)
			}

		case csTrailerName, csTrailerLn:
			switch {
			case c.state == csTrailerName && b == ':':
				if c.Request && int(c.nameLen) <= len(c.name) && forbiddenTrailer(c.name[:c.nameLen]) {
					return c.fail(i, data, ErrForbiddenTrailer)
				}
				c.state = csTrailerLn
			case c.state == csTrailerName && class[b]&cTchar != 0:
				c.nameByte(b)
			case c.state == csTrailerLn && b == '\r':
				c.state = csTrailerLF
			case c.state == csTrailerLn && class[b]&cValue != 0:
			default: // CR or LF in a name, NUL, other CTL; white space before the colon
				return c.fail(i, data, ErrBadTrailer)
			}
			if c.trailers++; c.trailers > maxTrailer {
				return c.fail(i, data, ErrTrailerTooLarge)
			}

		case csTrailerLF, csEndLF:
			if b != '\n' {
				return c.fail(i, data, ErrBareCR)
			}
			if c.state == csEndLF {
				c.state = csDone
				return i + 1, data, true, nil
			}
			c.state = csTrailer
		}
	}
	return i, data, false, nil
}

// nameByte records b, a byte of a trailer field's name, lowercased; a
// name longer than c.name is marked as such (no forbidden name is).
func (c *Chunked) nameByte(b byte) {
	if int(c.nameLen) < len(c.name) {
		c.name[c.nameLen] = lower[b]
		c.nameLen++
	} else {
		c.nameLen = uint8(len(c.name) + 1)
	}
}

// forbiddenTrailer reports whether a request trailer field named name
// (lowercase) is refused: framing, routing, request modifiers,
// authentication and content fields (RFC 9110 §6.5.1), connection
// fields, and those the gateway sets or checks in the header section.
func forbiddenTrailer(name []byte) bool {
	switch string(name) {
	case "content-length", "transfer-encoding", "trailer", "te", "connection", "keep-alive",
		"upgrade", "proxy-connection", "host", "expect", "max-forwards", "range", "if-match",
		"if-none-match", "if-modified-since", "if-unmodified-since", "if-range", "cache-control",
		"pragma", "authorization", "proxy-authorization", "cookie", "content-encoding",
		"content-type", "content-range", "forwarded", "x-forwarded-for", "x-forwarded-proto",
		"x-forwarded-host", "x-forwarded-port", "x-real-ip", "x-consumer-username",
		"x-credential-identifier", "x-consumer-custom-id":
		return true
	}
	return false
}

// endSizeLine moves past a size line: to the data, or for size 0 to the
// trailer section.
func (c *Chunked) endSizeLine() {
	c.digits, c.lineLen = 0, 0
	if c.remaining == 0 {
		c.state = csTrailer
	} else {
		c.state = csData
	}
}

// fail moves c to csFailed and reports err, unless data was already
// collected in this call: then it returns that data with the bytes before
// the bad one, and the next call reports err.
func (c *Chunked) fail(i int, data []byte, err error) (int, []byte, bool, error) {
	c.state, c.err = csFailed, err
	if data != nil {
		return i, data, false, nil
	}
	return 0, nil, false, err
}
