package conf

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseDuration(t *testing.T) {
	f := func(s string, want time.Duration) {
		t.Helper()
		got, err := parseDuration(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, got, s)
	}
	f("60s", 60*time.Second)
	f("60", 60*time.Second) // bare number = seconds, as nginx
	f("0", 0)
	f("10m", 10*time.Minute)
	f("500ms", 500*time.Millisecond)
	f("2h", 2*time.Hour)
	f("1d", 24*time.Hour)
	f("1w", 7*24*time.Hour)
	f("1M", 30*24*time.Hour) // nginx: M is months
	f("1y", 365*24*time.Hour)
	f("1h 30m", 90*time.Minute)
	f("1m30s", 90*time.Second)
	f(" 5s ", 5*time.Second)

	for _, s := range []string{"", "s", "-1s", "1.5s", "10 parsecs", "1x", "5S", "99999999999999999999s", "9999999999y"} {
		_, err := parseDuration(s)
		assert.Error(t, err, s)
	}
}

func TestParseSize(t *testing.T) {
	f := func(s string, want int64) {
		t.Helper()
		got, err := parseSize(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, got, s)
	}
	f("0", 0)
	f("1024", 1024)
	f("8k", 8<<10)
	f("8K", 8<<10)
	f("512k", 512<<10)
	f("1m", 1<<20)
	f("1M", 1<<20)
	f("2g", 2<<30)
	f("2G", 2<<30)

	for _, s := range []string{"", "k", "-1", "1.5m", "1t", "1 k", "99999999999g", "0x10"} {
		_, err := parseSize(s)
		assert.Error(t, err, s)
	}
}

func TestParseHeaderBuffers(t *testing.T) {
	f := func(s string, want int) {
		t.Helper()
		got, err := parseHeaderBuffers(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, got, s)
	}
	f("4 8k", 32<<10)
	f("32k", 32<<10)
	f("8 16k", 128<<10)
	f("1  1m", 1<<20)
	f("65536", 64<<10)
	for _, s := range []string{"", "0", "0 8k", "4 0", "4 8k 2", "x 8k", "2048 1m"} {
		_, err := parseHeaderBuffers(s)
		assert.Error(t, err, s)
	}
}

func TestParseWorkers(t *testing.T) {
	for s, want := range map[string]int{"auto": 0, "AUTO": 0, "1": 1, "16": 16, "1024": 1024} {
		got, err := parseWorkers(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, got, s)
	}
	for _, s := range []string{"0", "-1", "1025", "many", ""} {
		_, err := parseWorkers(s)
		assert.Error(t, err, s)
	}
}

func TestParseBusyPoll(t *testing.T) {
	for s, want := range map[string]time.Duration{
		"0": 0, "0us": 0, "50us": 50 * time.Microsecond, " 200us ": 200 * time.Microsecond,
		"1ms": time.Millisecond, "100ms": 100 * time.Millisecond, "100000us": 100 * time.Millisecond,
		"50\u00b5s": 50 * time.Microsecond, "50\u03bcs": 50 * time.Microsecond, "005us": 5 * time.Microsecond,
		(50 * time.Microsecond).String(): 50 * time.Microsecond, // as sluice logs it
	} {
		got, err := parseBusyPoll(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, got, s)
	}
	for _, s := range []string{"1", "101ms", "100001us", "-5us", "+5us", "-0us", "us", "5 us", "1.5ms", "1ms 50us", "fast", " ", ""} {
		_, err := parseBusyPoll(s)
		assert.Error(t, err, s)
	}
	_, err := parseBusyPoll("99999999999999999999us")
	assert.ErrorContains(t, err, "want at most 100ms")
	_, err = parseBusyPoll("1")
	assert.ErrorContains(t, err, "a bare number is seconds")
}

func TestParseCIDR(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.0/24": "127.0.0.0/24",
		"127.0.0.9/24": "127.0.0.0/24",
		"10.0.0.1":     "10.0.0.1/32",
		"::1":          "::1/128",
		"0.0.0.0/0":    "0.0.0.0/0",
		"::/0":         "::/0",
		// clients are matched unmapped, so mapped entries are too
		"::ffff:10.0.0.0/104": "10.0.0.0/8",
		"::ffff:10.1.2.3":     "10.1.2.3/32",
	} {
		p, err := parseCIDR(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, p.String(), in)
	}
	for _, s := range []string{"", "localhost", "10.0.0.0/33", "fe80::1%eth0", "1.2.3", "::ffff:0.0.0.0/90"} {
		_, err := parseCIDR(s)
		assert.Error(t, err, s)
	}
}

func TestExpandEnv(t *testing.T) {
	t.Setenv("SLUICE_T_A", "alpha")
	t.Setenv("SLUICE_T_EMPTY", "")
	f := func(in, want string) {
		t.Helper()
		got, err := expandEnv(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	f("plain", "plain")
	f("${{SLUICE_T_A}}", "alpha")
	f("x-${{ SLUICE_T_A }}-y", "x-alpha-y")
	f("${{SLUICE_T_EMPTY}}", "")                                // set but empty counts as set (APISIX)
	f("${{SLUICE_T_UNSET:=dflt}}", "dflt")                      // default
	f("${{SLUICE_T_UNSET := 9180 }}", "9180")                   // trimmed
	f("${{SLUICE_T_A:=dflt}}", "alpha")                         // env wins
	f("$SLUICE_T_A ${SLUICE_T_A}", "$SLUICE_T_A ${SLUICE_T_A}") // nginx's syntax is left alone
	_, err := expandEnv("${{SLUICE_T_UNSET}}")
	assert.ErrorContains(t, err, "environment variable SLUICE_T_UNSET is not set")
}

func TestCheckKey(t *testing.T) {
	assert.NoError(t, checkKey(testKey))
	assert.ErrorContains(t, checkKey("edd1c9f034335f136f87ad84b625c8f1"), "published example keys")
	assert.ErrorContains(t, checkKey("4054f7cf07e344346cd3f287985e76a2"), "published example keys")
	assert.ErrorContains(t, checkKey("0123456789abcdef0123456789abcde"), "shorter than 32")
	assert.NoError(t, checkKey("0123456789abcdef0123456789abcdef"))
	assert.ErrorContains(t, checkKey("0123456789abcdef 0123456789abcdef"), "space or control")
}
