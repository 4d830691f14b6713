package conf

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Limits on values; beyond them a value is surely a typo.
const (
	maxWorkerProcesses = 1024
	// maxBusyPoll bounds nginx_config.busy_poll: polling longer than this
	// after the last event is a busy core, not a latency choice.
	maxBusyPoll    = 100 * time.Millisecond
	maxHeadBuffers = 1 << 30 // large_client_header_buffers, bytes
	minKeyLen      = 32      // SPEC §3
)

// exampleKeys are the admin keys APISIX shipped in conf/config.yaml up to 3.9
// (admin and viewer); they are in every tutorial, so they guard nothing.
var exampleKeys = map[string]bool{
	"edd1c9f034335f136f87ad84b625c8f1": true,
	"4054f7cf07e344346cd3f287985e76a2": true,
}

// parseDuration parses an nginx time such as "60s", "10m", "500ms", "1h 30m"
// or a bare number of seconds. nginx units are case-sensitive: m is minutes,
// M is months (30 days).
func parseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("want a duration such as 60s, 10m, 500ms or a number of seconds, got %q", s)
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, bad
	}
	var total time.Duration
	for i := 0; i < len(t); {
		if t[i] == ' ' {
			i++
			continue
		}
		j := i
		for j < len(t) && t[j] >= '0' && t[j] <= '9' {
			j++
		}
		if j == i {
			return 0, bad
		}
		n, err := strconv.ParseInt(t[i:j], 10, 64)
		if err != nil {
			return 0, bad
		}
		i = j
		unit := time.Second
		switch {
		case strings.HasPrefix(t[i:], "ms"):
			unit, i = time.Millisecond, i+2
		case i == len(t):
			// a bare number: seconds, as nginx
		default:
			switch t[i] {
			case 's':
				unit = time.Second
			case 'm':
				unit = time.Minute
			case 'h':
				unit = time.Hour
			case 'd':
				unit = 24 * time.Hour
			case 'w':
				unit = 7 * 24 * time.Hour
			case 'M':
				unit = 30 * 24 * time.Hour
			case 'y':
				unit = 365 * 24 * time.Hour
			default:
				return 0, bad
			}
			i++
		}
		if n > int64(math.MaxInt64/unit) || total > math.MaxInt64-time.Duration(n)*unit {
			return 0, fmt.Errorf("duration %q is too large", s)
		}
		total += time.Duration(n) * unit
	}
	return total, nil
}

// parseSize parses an nginx size: a number of bytes with an optional k, m or
// g suffix (case-insensitive), e.g. "0", "512k", "1m", "2g".
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult != 1 {
			t = t[:len(t)-1]
		}
	}
	bad := fmt.Errorf("want a size such as 0, 8k, 1m or 2g, got %q", s)
	if t == "" || strings.TrimLeft(t, "0123456789") != "" {
		return 0, bad
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, bad
	}
	return n * mult, nil
}

// parseHeaderBuffers parses large_client_header_buffers: nginx's "number
// size" ("4 8k" = 32k) or a plain size ("32k").
func parseHeaderBuffers(s string) (int, error) {
	f := strings.Fields(s)
	var n, size int64 = 1, 0
	var err error
	switch len(f) {
	case 1:
		size, err = parseSize(f[0])
	case 2:
		n, err = strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("want \"number size\" such as \"4 8k\", got %q", s)
		}
		size, err = parseSize(f[1])
	default:
		return 0, fmt.Errorf("want \"number size\" such as \"4 8k\" or a size such as 32k, got %q", s)
	}
	if err != nil {
		return 0, err
	}
	if size < 1 {
		return 0, fmt.Errorf("want a size above 0, got %q", s)
	}
	if size > maxHeadBuffers/n {
		return 0, fmt.Errorf("want at most 1g in all, got %q", s)
	}
	return int(n * size), nil
}

// parseWorkers parses worker_processes: "auto" (0) or 1…1024.
func parseWorkers(s string) (int, error) {
	if strings.EqualFold(strings.TrimSpace(s), "auto") {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > maxWorkerProcesses {
		return 0, fmt.Errorf("want auto or a number from 1 to %d, got %q", maxWorkerProcesses, s)
	}
	return n, nil
}

// parseBusyPoll parses busy_poll: 0 (off), a number of microseconds with
// "us" or "µs" (nginx has no unit below ms, and the useful range starts at
// tens of microseconds; sluice prints durations as Go does, "50µs"), or an
// nginx duration such as "1ms"; at most maxBusyPoll.
func parseBusyPoll(s string) (time.Duration, error) {
	bad := fmt.Errorf("want a duration such as 50us or 1ms, got %q", s)
	t := strings.TrimSpace(s)
	var d time.Duration
	if digits, ok := cutMicros(t); ok {
		if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
			return 0, bad
		}
		digits = strings.TrimLeft(digits, "0")
		if len(digits) > 9 { // over 1000 s: surely above the limit
			return 0, fmt.Errorf("want at most %v, got %q", maxBusyPoll, s)
		}
		n, _ := strconv.Atoi("0" + digits)
		d = time.Duration(n) * time.Microsecond
	} else {
		var err error
		if d, err = parseDuration(t); err != nil {
			return 0, bad
		}
	}
	if d > maxBusyPoll {
		if strings.TrimLeft(t, "0123456789") == "" {
			return 0, fmt.Errorf("want at most %v (a bare number is seconds), got %q", maxBusyPoll, s)
		}
		return 0, fmt.Errorf("want at most %v, got %q", maxBusyPoll, s)
	}
	return d, nil
}

// cutMicros cuts a microsecond unit ("us", "µs" with U+00B5 or U+03BC) off s.
func cutMicros(s string) (string, bool) {
	for _, unit := range []string{"us", "\u00b5s", "\u03bcs"} {
		if v, ok := strings.CutSuffix(s, unit); ok {
			return v, true
		}
	}
	return s, false
}

// parseIP normalises a listen IP: an IPv4 or IPv6 literal (nginx's
// "[::1]" form accepted), "*" (= 0.0.0.0) or "localhost" (= 127.0.0.1).
func parseIP(s string) (string, error) {
	t := strings.TrimSpace(s)
	switch t {
	case "*":
		return "0.0.0.0", nil
	case "localhost":
		return "127.0.0.1", nil
	}
	if len(t) > 2 && t[0] == '[' && t[len(t)-1] == ']' {
		t = t[1 : len(t)-1]
	}
	a, err := netip.ParseAddr(t)
	if err != nil {
		return "", fmt.Errorf("want an IP address, got %q", s)
	}
	return a.String(), nil
}

// checkPort reports whether p is a TCP port.
func checkPort(p int) error {
	if p < 1 || p > 65535 {
		return fmt.Errorf("want a port from 1 to 65535, got %d", p)
	}
	return nil
}

// parseCIDR normalises an allow_admin entry: a CIDR (masked, so
// 127.0.0.1/24 becomes 127.0.0.0/24) or a bare IP (/32 or /128).
func parseCIDR(s string) (netip.Prefix, error) {
	t := strings.TrimSpace(s)
	if strings.Contains(t, "/") {
		p, err := netip.ParsePrefix(t)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("want a CIDR such as 10.0.0.0/8 or an IP address, got %q", s)
		}
		if a := p.Addr(); a.Is4In6() {
			// clients are matched unmapped: ::ffff:10.0.0.0/104 is 10.0.0.0/8
			if p.Bits() < 96 {
				return netip.Prefix{}, fmt.Errorf("want a CIDR such as 10.0.0.0/8 or an IP address, got %q (an IPv4-mapped prefix shorter than /96)", s)
			}
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(t)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("want a CIDR such as 10.0.0.0/8 or an IP address, got %q", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// checkKey says why an admin key is refused, without quoting it.
func checkKey(k string) error {
	switch {
	case exampleKeys[k]:
		return errors.New("key is one of APISIX's published example keys, which anyone can look up; " +
			`run "sluice keygen" for a new one, or leave key empty to have one generated`)
	case len(k) < minKeyLen:
		return fmt.Errorf("key is shorter than %d characters; "+
			`run "sluice keygen" for a strong one, or leave key empty to have one generated`, minKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c == 0x7f {
			return errors.New("key contains a space or control character, which an X-API-KEY header cannot carry")
		}
	}
	return nil
}

// checkEtcdHost reports whether h is an http(s) URL with a host.
func checkEtcdHost(h string) error {
	u, err := url.Parse(h)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want a URL such as http://127.0.0.1:2379, got %q", h)
	}
	return nil
}

// checkBuckets reports whether b are positive, finite and strictly
// increasing, as a Prometheus histogram needs.
func checkBuckets(b []float64) error {
	if len(b) == 0 {
		return errors.New("want at least one bucket")
	}
	for i, v := range b {
		if v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return fmt.Errorf("bucket %v: want a positive number of milliseconds", v)
		}
		if i > 0 && v <= b[i-1] {
			return fmt.Errorf("buckets must increase: %v after %v", v, b[i-1])
		}
	}
	return nil
}

// envRef is APISIX's ${{VAR}} / ${{VAR:=default}} (apisix/cli/file.lua
// resolve_conf_var; "${{" because nginx owns "$var" and "${var}").
var envRef = regexp.MustCompile(`\$\{\{\s*(\w+)\s*(:=\s*(.*?))?\s*\}\}`)

// expandEnv replaces ${{VAR}} and ${{VAR:=default}} in a scalar with the
// environment variable (set but empty counts as set, as in APISIX) or the
// default; a variable that is unset and has no default is an error.
func expandEnv(s string) (string, error) {
	if !strings.Contains(s, "${{") {
		return s, nil
	}
	var b strings.Builder
	last := 0
	for _, m := range envRef.FindAllStringSubmatchIndex(s, -1) {
		b.WriteString(s[last:m[0]])
		last = m[1]
		name := s[m[2]:m[3]]
		if v, ok := os.LookupEnv(name); ok {
			b.WriteString(v)
			continue
		}
		if m[4] < 0 {
			return "", fmt.Errorf("environment variable %s is not set (write ${{%s:=default}} for a default)", name, name)
		}
		b.WriteString(s[m[6]:m[7]])
	}
	b.WriteString(s[last:])
	return b.String(), nil
}
