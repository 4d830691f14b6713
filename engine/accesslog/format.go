package accesslog

import (
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
)

// Entry is one finished request as the access log sees it. The engine fills
// it from the exchange without allocating: byte slices may point into
// request buffers (they are copied into the log line by Append and not kept),
// strings are the compiled route's and arm's own.
type Entry struct {
	Time       int64          // unix nanos at the end of the request
	ClientAddr netip.AddrPort // the client's address and port
	Method     []byte         // as received
	Host       []byte         // Host header as received (nil: none)
	Path       []byte         // request-target as received, query included
	Status     int            // status sent to the client
	BytesSent  int64          // response bytes sent to the client, head included
	// RequestTime is the time from the first byte of the request head to the
	// end of the response, in nanoseconds.
	RequestTime  int64
	UpstreamAddr netip.AddrPort // upstream node used; the zero value = none
	// UpstreamStatus is the upstream's response status; 0 = no response.
	UpstreamStatus int
	// UpstreamResponseTime is from sending the request upstream to the end
	// of its response, in nanoseconds; 0 = none.
	UpstreamResponseTime int64
	RouteID              string // "" = no route matched
	Arm                  string // traffic-split arm label "rule/arm" (e.g. "0/1"); "" = no split
	UpstreamURI          []byte // path (and query) sent upstream; nil = nothing sent
	Consumer             string // authenticated consumer; "" = none
	UserAgent            []byte // User-Agent header; nil = none
}

// AppendEntry appends e to dst as one access-log line, newline included, in
// the format described in the package documentation. It does not allocate
// when dst has room for the line.
func AppendEntry(dst []byte, e *Entry) []byte {
	var tc timeCache
	return tc.appendEntry(dst, e)
}

// timeCache keeps the "2006-01-02T15:04:05" prefix of the last second
// formatted, so a busy loop formats a date once per second.
type timeCache struct {
	sec    int64
	n      int // length of the cached prefix; 0 = none
	prefix [32]byte
}

const timeLayout = "2006-01-02T15:04:05"

func (tc *timeCache) appendTime(dst []byte, ns int64) []byte {
	sec, frac := ns/1e9, ns%1e9
	if frac < 0 {
		sec, frac = sec-1, frac+1e9
	}
	if tc.n == 0 || sec != tc.sec {
		tc.n = len(time.Unix(sec, 0).UTC().AppendFormat(tc.prefix[:0], timeLayout))
		tc.sec = sec
	}
	dst = append(dst, tc.prefix[:tc.n]...)
	ms := frac / 1e6
	return append(dst, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

func (tc *timeCache) appendEntry(dst []byte, e *Entry) []byte {
	dst = append(dst, "time="...)
	dst = tc.appendTime(dst, e.Time)
	dst = append(dst, " client="...)
	dst = appendAddr(dst, e.ClientAddr)
	dst = append(dst, " method="...)
	dst = appendValue(dst, e.Method, false)
	dst = append(dst, " host="...)
	dst = appendValue(dst, e.Host, false)
	dst = append(dst, " path="...)
	dst = appendValue(dst, e.Path, true)
	dst = append(dst, " status="...)
	dst = strconv.AppendInt(dst, int64(e.Status), 10)
	dst = append(dst, " bytes="...)
	dst = strconv.AppendInt(dst, e.BytesSent, 10)
	dst = append(dst, " request_time="...)
	dst = appendSeconds(dst, e.RequestTime)
	dst = append(dst, " upstream="...)
	dst = appendAddr(dst, e.UpstreamAddr)
	dst = append(dst, " upstream_status="...)
	if e.UpstreamStatus == 0 {
		dst = append(dst, '-')
	} else {
		dst = strconv.AppendInt(dst, int64(e.UpstreamStatus), 10)
	}
	dst = append(dst, " upstream_time="...)
	if e.UpstreamResponseTime == 0 {
		dst = append(dst, '-')
	} else {
		dst = appendSeconds(dst, e.UpstreamResponseTime)
	}
	dst = append(dst, " route="...)
	dst = appendString(dst, e.RouteID)
	dst = append(dst, " arm="...)
	dst = appendString(dst, e.Arm)
	dst = append(dst, " upstream_uri="...)
	dst = appendValue(dst, e.UpstreamURI, true)
	dst = append(dst, " consumer="...)
	dst = appendString(dst, e.Consumer)
	dst = append(dst, " ua="...)
	dst = appendValue(dst, e.UserAgent, true)
	return append(dst, '\n')
}

// appendAddr writes ip:port ([ip]:port for IPv6; an IPv4-mapped IPv6
// address as IPv4), or "-" for the zero value.
func appendAddr(dst []byte, ap netip.AddrPort) []byte {
	if !ap.IsValid() {
		return append(dst, '-')
	}
	if a := ap.Addr(); a.Is4In6() {
		ap = netip.AddrPortFrom(a.Unmap(), ap.Port())
	}
	return ap.AppendTo(dst)
}

// appendSeconds writes ns as seconds with millisecond resolution, nginx's
// $request_time form ("0.012"); negative durations are written as 0.000.
func appendSeconds(dst []byte, ns int64) []byte {
	if ns < 0 {
		ns = 0
	}
	ms := ns / 1e6
	dst = strconv.AppendInt(dst, ms/1000, 10)
	ms %= 1000
	return append(dst, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
}

// appendString is appendValue for a string, without converting it.
func appendString(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, '-')
	}
	if s != "-" && plain(s) {
		return append(dst, s...)
	}
	return appendQuoted(dst, s)
}

// appendValue writes v: "-" when v is nil (absent); quoted and escaped when
// always is set or v needs it (empty, "-", or a byte that is not a plain
// printable ASCII token character); as is otherwise.
func appendValue(dst, v []byte, always bool) []byte {
	if v == nil {
		return append(dst, '-')
	}
	if !always && len(v) > 0 && !(len(v) == 1 && v[0] == '-') && plain(v) {
		return append(dst, v...)
	}
	return appendQuoted(dst, v)
}

// plain reports whether s can be written unquoted: printable ASCII without
// space, '"', '=' or '\'.
func plain[T []byte | string](s T) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '=' || c == '\\' {
			return false
		}
	}
	return true
}

const hexDigits = "0123456789abcdef"

// appendQuoted writes s between double quotes. '"' and '\' are escaped with
// a backslash, \n \r \t as such; any other control byte, each byte of an
// invalid UTF-8 sequence, and each byte of a C1 control, U+2028 or U+2029
// are written as \xHH. Other UTF-8 text is kept as is.
func appendQuoted[T []byte | string](dst []byte, s T) []byte {
	dst = append(dst, '"')
	start := 0 // s[start:i] is pending, to be copied as is
	for i := 0; i < len(s); {
		c := s[i]
		if c >= ' ' && c < 0x7f && c != '"' && c != '\\' {
			i++
			continue
		}
		size := 1
		if c >= 0x80 {
			// at most 4 bytes: the conversion of a []byte stays on the stack
			r, n := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
			valid := r != utf8.RuneError || n > 1
			if valid && !(r >= 0x80 && r <= 0x9f) && r != 0x2028 && r != 0x2029 {
				i += n
				continue
			}
			size = n
		}
		dst = append(dst, s[start:i]...)
		for j := i; j < i+size; j++ {
			switch b := s[j]; b {
			case '"':
				dst = append(dst, '\\', '"')
			case '\\':
				dst = append(dst, '\\', '\\')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'x', hexDigits[b>>4], hexDigits[b&15])
			}
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
