package plugin

import (
	"bytes"

	"github.com/sluice-gw/sluice/engine/http1"
)

// UsageScanner finds the LLM token usage an upstream reported in its
// response body, as the body is relayed: an OpenAI-style usage object,
// `"usage":{"prompt_tokens":N,"completion_tokens":M,...}`, in a JSON body
// or in any event of an SSE stream (streamed chat completions carry it in
// the last event, with stream_options.include_usage). Anthropic's names,
// "input_tokens" and "output_tokens", count as prompt and completion too,
// and a "usage" object is found at any depth (OpenAI's Responses API puts
// it under "response").
//
// The engine calls Reset once per response, then Feed with each piece of
// body data in order (chunk data, never the chunked framing, which the
// engine has parsed already). Pieces may split anywhere, inside a key or a
// number: the scanner is a byte-driven state machine whose whole
// carry-over is a few integers, so it never buffers and never allocates. When several usage objects are seen (SSE: usage in
// several events), each field takes the value of the last complete usage
// object that had it. A usage object cut off by the end of the body is
// ignored.
//
// Only field names directly inside the usage object count (not
// "cached_tokens" inside "prompt_tokens_details"); values must be
// non-negative integers. Strings are tracked with their escapes, so
// `"usage"` inside a string value never matches; a newline inside a string
// (never valid JSON) resynchronises the scanner, so one malformed SSE event
// does not hide the usage of a later one.
//
// A UsageScanner is used by one goroutine (the request's event loop); the
// zero value is ready for plain bytes.
type UsageScanner struct {
	prompt, completion int64 // committed results, valid when known says so

	// JSON matcher
	state   uint8
	inStr   bool
	esc     bool  // the previous string byte was an unpaired backslash
	keyPos  uint8 // bytes of the current string matched so far
	keyMask uint8 // candidate names (bit per usageNames entry) still possible
	field   uint8 // which name the pending number belongs to
	depth   int32 // nesting inside the usage object (1 = its own members)
	num     int64
	pendP   int64 // values of the usage object being read (-1: absent)
	pendC   int64
	known   uint8 // bit 0: prompt committed, bit 1: completion committed
}

// usageNames are the names the matcher compares strings with: the usage
// key itself, then the member names.
var usageNames = [...]string{"usage", "prompt_tokens", "completion_tokens", "input_tokens", "output_tokens"}

const (
	nameUsage      = 1 << 0
	nameMembers    = 1<<1 | 1<<2 | 1<<3 | 1<<4
	fieldNone      = 0
	fieldPrompt    = 1
	fieldComplete  = 2
	maxUsageTokens = 1 << 53 // larger values are refused (not a token count)
)

// JSON matcher states (outside strings).
const (
	stIdle       uint8 = iota // outside a usage object
	stUsageColon              // after the "usage" key: want ':'
	stUsageOpen               // after "usage": want '{'
	stInUsage                 // inside the usage object
	stFieldColon              // after a member name: want ':'
	stFieldValue              // after "prompt_tokens": want a digit
	stNumber                  // inside the member's number
)

// Reset prepares s for a new response. It does not allocate.
func (s *UsageScanner) Reset() { *s = UsageScanner{} }

// Prompt returns the prompt token count reported, or -1 when none was.
func (s *UsageScanner) Prompt() int64 {
	if s.known&1 == 0 {
		return -1
	}
	return s.prompt
}

// Completion returns the completion token count reported, or -1 when none
// was.
func (s *UsageScanner) Completion() int64 {
	if s.known&2 == 0 {
		return -1
	}
	return s.completion
}

// Feed scans the next piece of the response body: body bytes, without
// transfer framing (the engine feeds chunk data as it parses the framing).
// b is only read during the call; Feed does not allocate.
func (s *UsageScanner) Feed(b []byte) { s.scan(b) }

// strSpecial marks the bytes that matter inside a string no name can match
// any more.
var strSpecial = [256]bool{'"': true, '\\': true, '\n': true}

// scan runs the JSON matcher over body bytes.
func (s *UsageScanner) scan(b []byte) {
	i := 0
	for i < len(b) {
		if s.inStr {
			i = s.scanString(b, i)
			continue
		}
		if s.state == stIdle {
			// Fast path: outside strings and outside a usage object, only
			// a quote can start anything.
			j := bytes.IndexByte(b[i:], '"')
			if j < 0 {
				return
			}
			i += j + 1
			s.openString(nameUsage)
			continue
		}
		s.step(b[i])
		i++
	}
}

// openString starts a string whose content is compared with the names in
// mask.
func (s *UsageScanner) openString(mask uint8) {
	s.inStr, s.esc, s.keyPos, s.keyMask = true, false, 0, mask
}

// scanString consumes string bytes from b[i:] and returns the next index.
func (s *UsageScanner) scanString(b []byte, i int) int {
	for i < len(b) {
		c := b[i]
		if s.esc {
			s.esc = false
			s.keyMask = 0 // an escape in a name: not one of ours
			if c == '\n' {
				s.resync()
				return i + 1
			}
			i++
			continue
		}
		switch c {
		case '"':
			s.inStr = false
			s.closeString()
			return i + 1
		case '\\':
			s.esc = true
			i++
			continue
		case '\n':
			s.resync()
			return i + 1
		}
		if s.keyMask == 0 {
			// Skip to the next byte that matters.
			i++
			for i < len(b) && !strSpecial[b[i]] {
				i++
			}
			continue
		}
		s.matchByte(c)
		i++
	}
	return i
}

// matchByte narrows the candidate names with the string's next byte.
func (s *UsageScanner) matchByte(c byte) {
	p := int(s.keyPos)
	for n := range usageNames {
		bit := uint8(1) << n
		if s.keyMask&bit == 0 {
			continue
		}
		if p >= len(usageNames[n]) || usageNames[n][p] != c {
			s.keyMask &^= bit
		}
	}
	if s.keyPos < 255 {
		s.keyPos++
	}
}

// matched returns the index of the name the closed string equals, or -1.
func (s *UsageScanner) matched() int {
	for n := range usageNames {
		if s.keyMask&(1<<n) != 0 && int(s.keyPos) == len(usageNames[n]) {
			return n
		}
	}
	return -1
}

// closeString acts on the end of a string.
func (s *UsageScanner) closeString() {
	switch s.state {
	case stIdle:
		if s.matched() == 0 {
			s.state = stUsageColon
		}
	case stInUsage:
		switch s.matched() {
		case 1, 3:
			s.field, s.state = fieldPrompt, stFieldColon
		case 2, 4:
			s.field, s.state = fieldComplete, stFieldColon
		}
	}
}

// resync drops any partial match after a newline inside a string.
func (s *UsageScanner) resync() {
	s.inStr, s.esc, s.keyMask = false, false, 0
	s.state, s.depth = stIdle, 0
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// step advances the matcher by one byte outside a string (state is not
// stIdle).
func (s *UsageScanner) step(c byte) {
	for {
		switch s.state {
		case stIdle:
			if c == '"' {
				s.openString(nameUsage)
			}
			return
		case stUsageColon:
			if isSpace(c) {
				return
			}
			if c == ':' {
				s.state = stUsageOpen
				return
			}
			s.state = stIdle // "usage" was not a key
		case stUsageOpen:
			if isSpace(c) {
				return
			}
			if c == '{' {
				s.state, s.depth, s.pendP, s.pendC = stInUsage, 1, -1, -1
				return
			}
			s.state = stIdle // "usage": null, a string, ...
		case stInUsage:
			switch c {
			case '"':
				if s.depth == 1 {
					s.openString(nameMembers)
				} else {
					s.openString(0)
				}
			case '{', '[':
				s.depth++
			case '}', ']':
				s.depth--
				if s.depth == 0 {
					s.commit()
					s.state = stIdle
				}
			}
			return
		case stFieldColon:
			if isSpace(c) {
				return
			}
			if c == ':' {
				s.state = stFieldValue
				return
			}
			s.state = stInUsage // the name was a value
		case stFieldValue:
			if isSpace(c) {
				return
			}
			if c >= '0' && c <= '9' {
				s.state, s.num = stNumber, int64(c-'0')
				return
			}
			s.state = stInUsage // null, a string, a negative number...
		case stNumber:
			if c >= '0' && c <= '9' {
				if s.num <= maxUsageTokens {
					s.num = s.num*10 + int64(c-'0')
				}
				return
			}
			if s.num <= maxUsageTokens && c != '.' && c != 'e' && c != 'E' {
				if s.field == fieldPrompt {
					s.pendP = s.num
				} else {
					s.pendC = s.num
				}
			}
			s.state = stInUsage
			if c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+' {
				return // the rest of a non-integer: ignored in stInUsage
			}
		}
	}
}

// commit takes the values of a complete usage object.
func (s *UsageScanner) commit() {
	if s.pendP >= 0 {
		s.prompt, s.known = s.pendP, s.known|1
	}
	if s.pendC >= 0 {
		s.completion, s.known = s.pendC, s.known|2
	}
}

// ScanUsage reports whether a response with these Content-Type and
// Content-Encoding values (nil when absent) can carry a usage object the
// scanner reads: JSON (application/json, application/*+json), SSE
// (text/event-stream) or NDJSON (application/x-ndjson), or no Content-Type
// at all; and not compressed. The engine may skip the scanner for other
// responses (downloads, images): it then costs nothing. It does not
// allocate.
func ScanUsage(contentType, contentEncoding []byte) bool {
	ce := bytes.TrimSpace(contentEncoding)
	if len(ce) > 0 && !http1.FoldEq(ce, "identity") {
		return false
	}
	ct := bytes.TrimSpace(contentType)
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = bytes.TrimSpace(ct[:i])
	}
	if len(ct) == 0 {
		return true
	}
	switch {
	case http1.FoldEq(ct, "application/json"),
		http1.FoldEq(ct, "text/event-stream"),
		http1.FoldEq(ct, "application/x-ndjson"):
		return true
	case len(ct) > len("+json") && http1.FoldEq(ct[len(ct)-len("+json"):], "+json") &&
		len(ct) > len("application/") && http1.FoldEq(ct[:len("application/")], "application/"):
		return true
	}
	return false
}
