package accesslog

import (
	"bytes"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fullEntry has every field set.
func fullEntry() Entry {
	return Entry{
		Time:                 time.Date(2026, 11, 25, 16, 58, 51, 123_456_789, time.UTC).UnixNano(),
		ClientAddr:           netip.MustParseAddrPort("127.0.0.1:5555"),
		Method:               []byte("POST"),
		Host:                 []byte("api.example.com"),
		Path:                 []byte("/v1/chat/completions?stream=1"),
		Status:               200,
		BytesSent:            512,
		RequestTime:          12_345_678,
		UpstreamAddr:         netip.MustParseAddrPort("127.0.0.1:1980"),
		UpstreamStatus:       201,
		UpstreamResponseTime: 11_999_999,
		RouteID:              "chat",
		Arm:                  "0/1",
		UpstreamURI:          []byte("/v2/chat/completions?stream=1"),
		Consumer:             "jack",
		UserAgent:            []byte("curl/8.5.0"),
	}
}

func TestAppendEntryEveryField(t *testing.T) {
	e := fullEntry()
	got := string(AppendEntry(nil, &e))
	assert.Equal(t, `time=2026-11-25T16:58:51.123Z client=127.0.0.1:5555 method=POST host=api.example.com`+
		` path="/v1/chat/completions?stream=1" status=200 bytes=512 request_time=0.012`+
		` upstream=127.0.0.1:1980 upstream_status=201 upstream_time=0.011 route=chat arm=0/1`+
		` upstream_uri="/v2/chat/completions?stream=1" consumer=jack ua="curl/8.5.0"`+"\n", got)

	// AppendEntry appends.
	got2 := string(AppendEntry([]byte("x\n"), &e))
	assert.Equal(t, "x\n"+got, got2)
}

// TestAppendEntryAbsent: a request that matched no route and was answered
// by the gateway itself: every optional field is "-".
func TestAppendEntryAbsent(t *testing.T) {
	e := Entry{
		Time:        0,
		ClientAddr:  netip.MustParseAddrPort("[::1]:40000"),
		Method:      []byte("GET"),
		Path:        []byte("/nope"),
		Status:      404,
		BytesSent:   0,
		RequestTime: 999_999, // truncated to 0.000, as nginx
	}
	assert.Equal(t, `time=1970-01-01T00:00:00.000Z client=[::1]:40000 method=GET host=- path="/nope" status=404`+
		` bytes=0 request_time=0.000 upstream=- upstream_status=- upstream_time=- route=- arm=-`+
		` upstream_uri=- consumer=- ua=-`+"\n", string(AppendEntry(nil, &e)))

	var zero Entry
	fields := parseLine(t, AppendEntry(nil, &zero))
	assert.Equal(t, "-", fields["client"])
	assert.Equal(t, "-", fields["method"])
	assert.Equal(t, "-", fields["path"])
	assert.Equal(t, "0", fields["status"])
}

func TestAppendEntryAddresses(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		e := Entry{ClientAddr: netip.MustParseAddrPort(in), UpstreamAddr: netip.MustParseAddrPort(in)}
		fields := parseLine(t, AppendEntry(nil, &e))
		assert.Equal(t, want, fields["client"], in)
		assert.Equal(t, want, fields["upstream"], in)
	}
	f("10.0.0.1:80", "10.0.0.1:80")
	f("[::ffff:10.0.0.1]:80", "10.0.0.1:80") // dual-stack listener
	f("[2001:db8::1]:443", "[2001:db8::1]:443")
}

func TestAppendEntryTimes(t *testing.T) {
	f := func(ns int64, want string) {
		t.Helper()
		e := Entry{RequestTime: ns, UpstreamResponseTime: ns}
		fields := parseLine(t, AppendEntry(nil, &e))
		assert.Equal(t, want, fields["request_time"], ns)
		if ns != 0 {
			assert.Equal(t, want, fields["upstream_time"], ns)
		}
	}
	f(0, "0.000")
	f(1_000_000, "0.001")
	f(1_999_999_999, "1.999")
	f(61_500_000_000, "61.500")
	f(-5, "0.000")

	// The time of day, and the per-second cache against a fresh format.
	var tc timeCache
	for _, ts := range []time.Time{
		time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 999_000_000, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 500_000_000, time.UTC), // negative unix nanos
		time.Date(2099, 12, 31, 23, 59, 59, 1_000_000, time.UTC),
	} {
		want := ts.Format("2006-01-02T15:04:05.000Z")
		assert.Equal(t, want, string(tc.appendTime(nil, ts.UnixNano())), ts)
		var fresh timeCache
		assert.Equal(t, want, string(fresh.appendTime(nil, ts.UnixNano())), ts)
	}
}

func TestAppendEntryEscaping(t *testing.T) {
	f := func(path, want string) {
		t.Helper()
		e := Entry{Path: []byte(path), Method: []byte(path), RouteID: path, UserAgent: []byte(path)}
		line := AppendEntry(nil, &e)
		fields := parseLine(t, line)
		assert.Equal(t, want, rawField(t, line, "path"), "%q", path)
		assert.Equal(t, path, fields["path"], "%q", path)
		assert.Equal(t, path, fields["method"], "%q", path)
		if path != "" { // an empty string field is absent
			assert.Equal(t, path, fields["route"], "%q", path)
		}
		assert.Equal(t, path, fields["ua"], "%q", path)
	}
	f(`/a`, `"/a"`)
	f(``, `""`)
	f(`-`, `"-"`)
	f(`/a b`, `"/a b"`)
	f(`/a"b`, `"/a\"b"`)
	f(`/a\b`, `"/a\\b"`)
	f("/a\nstatus=200", `"/a\nstatus=200"`)
	f("\r\t\x00\x1b[31m\x7f", `"\r\t\x00\x1b[31m\x7f"`)
	f("/caf\u00e9/\u4e2d", "\"/caf\u00e9/\u4e2d\"") // UTF-8 kept
	f("/\xff\xc3(", `"/\xff\xc3("`)                 // invalid UTF-8
	f("/\xc2\x9b2J", `"/\xc2\x9b2J"`)               // C1 control (CSI)
	f("/\u2028x", `"/\xe2\x80\xa8x"`)               // line separator
	f("/\ufffd", "\"/\ufffd\"")                     // a real U+FFFD
	f("/\xed\xa0\x80", `"/\xed\xa0\x80"`)           // surrogate
	f("/\xe0\x80\xaf", `"/\xe0\x80\xaf"`)           // overlong
	f("/\xf4\x90\x80\x80", `"/\xf4\x90\x80\x80"`)   // past U+10FFFF
	f("/\U0001F600", "\"/\U0001F600\"")             // 4-byte sequence
	f("a=b", `"a=b"`)

	// Fields quoted only when needed stay bare when plain.
	e := Entry{Method: []byte("GET"), RouteID: "route-1", Consumer: "a.b_c", Arm: "1/0", Host: []byte("h:8080")}
	fields := rawFields(t, AppendEntry(nil, &e))
	assert.Equal(t, "GET", fields["method"])
	assert.Equal(t, "route-1", fields["route"])
	assert.Equal(t, "a.b_c", fields["consumer"])
	assert.Equal(t, "1/0", fields["arm"])
	assert.Equal(t, "h:8080", fields["host"])
	// A present but empty Host or User-Agent is "", not -.
	e = Entry{Host: []byte{}, UserAgent: []byte{}}
	fields = rawFields(t, AppendEntry(nil, &e))
	assert.Equal(t, `""`, fields["host"])
	assert.Equal(t, `""`, fields["ua"])
}

// appendQuoted keeps valid UTF-8 text, escapes every byte of an invalid
// sequence, C1 controls and U+2028/9, and does not allocate for a byte
// slice when dst has room.
func TestAppendQuotedUTF8(t *testing.T) {
	in := []byte("é\xff\xe2\x82\u2028\u0085ok\U0001F600\xed\xa0\x80")
	assert.Equal(t, `"é\xff\xe2\x82\xe2\x80\xa8\xc2\x85ok😀\xed\xa0\x80"`, string(appendQuoted(nil, in)))
	assert.Equal(t, string(appendQuoted(nil, in)), string(appendQuoted(nil, string(in))))
	buf := make([]byte, 0, 256)
	assert.Zero(t, testing.AllocsPerRun(100, func() { buf = appendQuoted(buf[:0], in) }))
}

// FuzzAppendEntry: whatever the request carries, the entry is one line with
// no control byte, valid UTF-8, the keys in order, and every text field
// reads back as it was.
func FuzzAppendEntry(f *testing.F) {
	f.Add([]byte("/v1/chat"), []byte("curl/8"), "r1", "0/1")
	f.Add([]byte("/a\"b\\c\n\x00"), []byte("\xff\xfe"), "", "-")
	f.Add([]byte{}, []byte(nil), "a b=c", "\u2028")
	f.Fuzz(func(t *testing.T, path, ua []byte, route, arm string) {
		e := fullEntry()
		e.Path, e.UserAgent, e.Host, e.Method, e.UpstreamURI = path, ua, ua, path, path
		e.RouteID, e.Arm, e.Consumer = route, arm, route
		line := AppendEntry(nil, &e)
		require.True(t, utf8.Valid(line))
		require.Equal(t, byte('\n'), line[len(line)-1])
		for _, c := range line[:len(line)-1] {
			require.False(t, c < ' ' || c == 0x7f, "control byte %#x in %q", c, line)
		}
		fields := parseLine(t, line)
		want := func(key string, v []byte) {
			if v == nil {
				require.Equal(t, "-", fields[key], key)
			} else {
				require.Equal(t, string(v), fields[key], key)
			}
		}
		want("path", path)
		want("ua", ua)
		want("host", ua)
		want("method", path)
		want("upstream_uri", path)
		str := func(key, v string) {
			if v == "" {
				require.Equal(t, "-", fields[key], key)
			} else {
				require.Equal(t, v, fields[key], key)
			}
		}
		str("route", route)
		str("arm", arm)
		str("consumer", route)
	})
}

var keys = []string{"time", "client", "method", "host", "path", "status", "bytes", "request_time",
	"upstream", "upstream_status", "upstream_time", "route", "arm", "upstream_uri", "consumer", "ua"}

// parseLine reads one line back into decoded values; it fails the test
// when the keys are not the documented ones in order.
func parseLine(t testing.TB, line []byte) map[string]string {
	t.Helper()
	m, err := decodeLine(line, true)
	require.NoError(t, err, "%q", line)
	return m
}

// rawFields is parseLine without unquoting.
func rawFields(t testing.TB, line []byte) map[string]string {
	t.Helper()
	m, err := decodeLine(line, false)
	require.NoError(t, err, "%q", line)
	return m
}

func rawField(t testing.TB, line []byte, key string) string {
	t.Helper()
	return rawFields(t, line)[key]
}

func decodeLine(line []byte, unquote bool) (map[string]string, error) {
	s, ok := strings.CutSuffix(string(line), "\n")
	if !ok || strings.Contains(s, "\n") {
		return nil, errors.New("not one line")
	}
	m := make(map[string]string)
	for i, k := range keys {
		if i > 0 {
			if !strings.HasPrefix(s, " ") {
				return nil, errors.New("no space before " + k)
			}
			s = s[1:]
		}
		if !strings.HasPrefix(s, k+"=") {
			return nil, errors.New("want key " + k + " at " + s)
		}
		s = s[len(k)+1:]
		var raw, val string
		if strings.HasPrefix(s, `"`) {
			j := 1
			var b bytes.Buffer
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] != '\\' {
					b.WriteByte(s[j])
					continue
				}
				j++
				if j >= len(s) {
					return nil, errors.New("dangling backslash")
				}
				switch s[j] {
				case '"', '\\':
					b.WriteByte(s[j])
				case 'n':
					b.WriteByte('\n')
				case 'r':
					b.WriteByte('\r')
				case 't':
					b.WriteByte('\t')
				case 'x':
					if j+2 >= len(s) {
						return nil, errors.New("short \\x")
					}
					v, err := strconv.ParseUint(s[j+1:j+3], 16, 8)
					if err != nil {
						return nil, err
					}
					b.WriteByte(byte(v))
					j += 2
				default:
					return nil, errors.New("bad escape")
				}
			}
			if j >= len(s) {
				return nil, errors.New("unterminated quote")
			}
			raw, val = s[:j+1], b.String()
			s = s[j+1:]
		} else {
			j := strings.IndexByte(s, ' ')
			if j < 0 {
				j = len(s)
			}
			raw = s[:j]
			val = raw
			if strings.ContainsAny(raw, "\"=\\") {
				return nil, errors.New("bare value with a special byte: " + raw)
			}
			s = s[j:]
		}
		if unquote {
			m[k] = val
		} else {
			m[k] = raw
		}
	}
	if s != "" {
		return nil, errors.New("trailing " + s)
	}
	return m, nil
}
