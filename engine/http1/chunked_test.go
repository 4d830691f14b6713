package http1

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeResult is what feeding a body to a Chunked produced.
type decodeResult struct {
	payload  string
	consumed int // bytes of the input that belong to the body
	done     bool
	err      error
}

// decodeChunked feeds in to a fresh Chunked in pieces: the cut points split
// the input, and a piece's unconsumed bytes are offered again with the next
// one, as the engine does with its inbound buffer. It calls Next until it
// needs more, finishes or fails, and checks Next's contract on the way.
func decodeChunked(t testing.TB, in []byte, cuts ...int) decodeResult {
	return decodeWith(t, Chunked{}, in, cuts...)
}

// decodeWith is decodeChunked starting from c (its options set).
func decodeWith(t testing.TB, c Chunked, in []byte, cuts ...int) decodeResult {
	var (
		res   decodeResult
		start int // first byte not yet consumed
	)
	var payload []byte
	ends := append(append([]int(nil), cuts...), len(in))
	for _, end := range ends {
		for {
			buf := in[start:end]
			n, data, done, err := c.Next(buf)
			if n < 0 || n > len(buf) {
				t.Fatalf("n %d out of [0,%d]", n, len(buf))
			}
			if len(data) > 0 {
				off := cap(buf) - cap(data)
				if off < 0 || off+len(data) > n {
					t.Fatalf("data outside buf[:n]")
				}
			}
			payload = append(payload, data...)
			start += n
			if err != nil {
				if n != 0 || data != nil {
					t.Fatalf("error with n=%d data=%q", n, data)
				}
				res.err = err
				res.payload, res.consumed = string(payload), start
				return res
			}
			if done {
				res.done = true
				res.payload, res.consumed = string(payload), start
				return res
			}
			if n == 0 {
				break
			}
		}
	}
	res.payload, res.consumed = string(payload), start
	return res
}

// byteByByte decodes in offering one more byte at a time.
func byteByByte(t testing.TB, in []byte) decodeResult {
	return decodeChunked(t, in, cutsEvery(len(in))...)
}

func TestChunkedValid(t *testing.T) {
	cases := []struct {
		name, in, payload string
	}{
		{"simple", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world"},
		{"hex upper lower", "a\r\n0123456789\r\nB\r\n0123456789A\r\n0\r\n\r\n", "01234567890123456789A"},
		{"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello"},
		{"16 digits", "0000000000000003\r\nabc\r\n0\r\n\r\n", "abc"},
		{"extension", "5;name=value\r\nhello\r\n0;last\r\n\r\n", "hello"},
		{"extension quoted", "5 ; a=\"b;c\"\t;d\r\nhello\r\n0\r\n\r\n", "hello"},
		{"trailers", "5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-Other: a b\r\n\r\n", "hello"},
		{"empty body", "0\r\n\r\n", ""},
		{"binary data", "4\r\n\r\n\x00\n\r\n0\r\n\r\n", "\r\n\x00\n"},
		{"sse", "e\r\ndata: {\"a\":1}\n\r\n10\r\ndata: [DONE]\n\n\r\n\r\n0\r\n\r\n", "data: {\"a\":1}\ndata: [DONE]\n\n\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, extra := range []string{"", "GET / HTTP/1.1\r\n\r\n", "\r\n"} {
				in := []byte(c.in + extra)
				want := decodeResult{payload: c.payload, consumed: len(c.in), done: true}
				require.Equal(t, want, decodeChunked(t, in), "one piece")
				require.Equal(t, want, byteByByte(t, in), "byte by byte")
				for i := 0; i <= len(in); i++ {
					require.Equal(t, want, decodeChunked(t, in, i), "split at %d", i)
					for j := i; j <= len(in); j += 3 {
						require.Equal(t, want, decodeChunked(t, in, i, j), "split at %d, %d", i, j)
					}
				}
			}
		})
	}
}

func TestChunkedErrors(t *testing.T) {
	cases := []struct {
		name, in, payload string
		want              error
	}{
		{"empty size", "\r\n", "", ErrBadChunkSize},
		// a bare LF anywhere in the framing: lenient parsers disagree there
		{"lf after size", "5\nhello\r\n0\r\n\r\n", "", ErrBadChunkSize},
		{"lf after data", "5\r\nhello\n0\r\n\r\n", "hello", ErrBadChunkEnd},
		{"lf in trailer", "0\r\nX-Sum: 1\n\r\n", "", ErrBadTrailer},
		{"lf final line", "0\r\n\n", "", ErrBadTrailer},
		{"bws before crlf", "5 \t\r\nhello\r\n0\r\n\r\n", "", ErrBadChunkSize},
		{"trailer without colon", "0\r\nfoo\r\n\r\n", "", ErrBadTrailer},
		{"trailer space before colon", "0\r\nX :1\r\n\r\n", "", ErrBadTrailer},
		{"trailer ctl", "0\r\nX: a\x01\r\n\r\n", "", ErrBadTrailer},
		{"trailer folded", "0\r\nX: a\r\n b\r\n\r\n", "", ErrBadTrailer},
		{"non hex", "g\r\n", "", ErrBadChunkSize},
		{"sign", "+5\r\nhello\r\n0\r\n\r\n", "", ErrBadChunkSize},
		{"negative", "-5\r\n", "", ErrBadChunkSize},
		{"0x prefix", "0x5\r\nhello\r\n", "", ErrBadChunkSize},
		{"17 digits", "00000000000000005\r\nhello\r\n", "", ErrBadChunkSize},
		{"overflow", "8000000000000000\r\n", "", ErrBadChunkSize},
		{"max int64", "7fffffffffffffff\r\nab", "ab", nil},
		{"space in size", "5 5\r\n", "", ErrBadChunkSize},
		{"leading space", " 5\r\nhello\r\n", "", ErrBadChunkSize},
		{"ext only", ";x\r\n", "", ErrBadChunkSize},
		{"bare cr after size", "5\rhello\r\n", "", ErrBareCR},
		{"bare lf in ext", "5;x\nhello\r\n0\r\n\r\n", "", ErrBadChunkExt},
		{"nul in ext", "5;x\x00\r\nhello\r\n", "", ErrBadChunkExt},
		{"ext too long", "5;" + strings.Repeat("x", 4096) + "\r\nhello\r\n", "", ErrChunkLineTooLong},
		{"bws too long", "5" + strings.Repeat(" ", 4096) + "\r\n", "", ErrChunkLineTooLong},
		{"data too long", "5\r\nhello!\r\n0\r\n\r\n", "hello", ErrBadChunkEnd},
		{"data cr only", "5\r\nhello\rX", "hello", ErrBadChunkEnd},
		{"data missing crlf then size", "5\r\nhello0\r\n\r\n", "hello", ErrBadChunkEnd},
		{"second chunk bad", "5\r\nhello\r\nz\r\n", "hello", ErrBadChunkSize},
		{"trailer bare cr", "0\r\nX: a\rb\r\n\r\n", "", ErrBareCR},
		{"trailer nul", "0\r\nX: a\x00\r\n\r\n", "", ErrBadTrailer},
		{"final bare cr", "0\r\n\rX", "", ErrBareCR},
		{"trailer too large", "0\r\n" + strings.Repeat("X: yyyyyyyyyyyyyy\r\n", 2000) + "\r\n", "", ErrTrailerTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := []byte(c.in)
			whole := decodeChunked(t, in)
			assert.Equal(t, c.payload, whole.payload)
			assert.False(t, whole.done)
			if c.want == nil {
				assert.NoError(t, whole.err)
			} else {
				assert.ErrorIs(t, whole.err, c.want)
				assert.Equal(t, 400, StatusOf(whole.err))
			}
			bb := byteByByte(t, in)
			assert.Equal(t, whole.payload, bb.payload)
			assert.Equal(t, whole.err, bb.err)
			if whole.err == nil {
				// On an error Next reports n == 0, so how much was consumed
				// before depends on how the input was cut.
				assert.Equal(t, whole.consumed, bb.consumed)
			}
		})
	}
}

// A request body's trailers may not carry fields that belong in the
// header section (an upstream merging them would read a Host or an
// Authorization the gateway never saw); other trailers, and any trailer
// in a response (Request unset), pass.
func TestChunkedRequestTrailers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"3\r\nabc\r\n0\r\nX-Checksum: 1\r\n\r\n", nil},
		{"0\r\nX-Checksum: 1\r\nHost: evil\r\n\r\n", ErrForbiddenTrailer},
		{"0\r\nHOST: evil\r\n\r\n", ErrForbiddenTrailer},
		{"0\r\nContent-Length: 50\r\n\r\n", ErrForbiddenTrailer},
		{"0\r\nauthorization: Bearer x\r\n\r\n", ErrForbiddenTrailer},
		{"0\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n", ErrForbiddenTrailer},
		{"0\r\nX-Credential-Identifier: a\r\n\r\n", ErrForbiddenTrailer},
		{"0\r\nX-Hosts: a\r\nX-Credential-Identifier-Long: a\r\n\r\n", nil}, // prefixes and longer names
		{"0\r\n" + strings.Repeat("h", 40) + ": a\r\n\r\n", nil},
	} {
		in := []byte(tc.in)
		for _, res := range []decodeResult{decodeWith(t, Chunked{Request: true}, in), decodeWith(t, Chunked{Request: true}, in, cutsEvery(len(in))...)} {
			if tc.want == nil {
				assert.True(t, res.done, tc.in)
				assert.NoError(t, res.err, tc.in)
			} else {
				assert.ErrorIs(t, res.err, tc.want, tc.in)
				assert.Equal(t, 400, StatusOf(res.err))
			}
		}
		assert.True(t, decodeChunked(t, in).done, "a response's trailers pass: %q", tc.in)
	}
}

// cutsEvery cuts n bytes into one-byte pieces.
func cutsEvery(n int) []int {
	cuts := make([]int, n)
	for i := range cuts {
		cuts[i] = i
	}
	return cuts
}

func TestChunkedTrailerLimit(t *testing.T) {
	line := "X: " + strings.Repeat("y", 1022) + "\r\n" // 1 KiB
	ok := "0\r\n" + strings.Repeat(line, 31) + "\r\n"
	assert.Equal(t, decodeResult{consumed: len(ok), done: true}, decodeChunked(t, []byte(ok)))
	bad := "0\r\n" + strings.Repeat(line, 33) + "\r\n"
	assert.ErrorIs(t, decodeChunked(t, []byte(bad)).err, ErrTrailerTooLarge)
}

func TestChunkedSticky(t *testing.T) {
	var c Chunked
	_, _, _, err := c.Next([]byte("zz"))
	require.ErrorIs(t, err, ErrBadChunkSize)
	_, _, _, err = c.Next([]byte("5\r\n"))
	assert.ErrorIs(t, err, ErrBadChunkSize, "an error repeats")
	c.Reset()
	n, _, done, err := c.Next([]byte("0\r\n\r\nNEXT"))
	require.NoError(t, err)
	assert.True(t, done)
	assert.Equal(t, 5, n)
	n, data, done, err := c.Next([]byte("NEXT"))
	assert.Equal(t, 0, n)
	assert.Nil(t, data)
	assert.True(t, done)
	assert.NoError(t, err)
}

func TestChunkedOneRunPerCall(t *testing.T) {
	var c Chunked
	buf := []byte("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
	n, data, done, err := c.Next(buf)
	require.NoError(t, err)
	assert.False(t, done)
	assert.Equal(t, "abc", string(data))
	assert.Equal(t, len("3\r\nabc\r\n2\r\n"), n, "framing after the run is consumed too")
	buf = buf[n:]
	n, data, done, err = c.Next(buf)
	require.NoError(t, err)
	assert.True(t, done)
	assert.Equal(t, "de", string(data))
	assert.Equal(t, len(buf), n)
}
