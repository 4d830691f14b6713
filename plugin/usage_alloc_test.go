//go:build !race

package plugin

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sluice-gw/sluice/engine/http1"
)

func TestUsageScannerAlloc(t *testing.T) {
	plain := []byte(chatSSE)
	framed := chunk([]byte(chatJSON), 40)
	var s UsageScanner
	n := testing.AllocsPerRun(200, func() {
		s.Reset()
		for i := 0; i < len(plain); i += 16 {
			s.Feed(plain[i:min(i+16, len(plain))])
		}
		s.Reset()
		var ch http1.Chunked
		for b := framed; len(b) > 0; {
			k, data, done, err := ch.Next(b)
			if err != nil || k == 0 {
				t.Fatal("framing", err)
			}
			s.Feed(data)
			b = b[k:]
			if done {
				break
			}
		}
	})
	assert.Zero(t, n)
	assert.Equal(t, int64(10), s.Completion())
}

func TestScanUsageAlloc(t *testing.T) {
	ct, ce := []byte("Text/Event-Stream; charset=utf-8"), []byte("identity")
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		if !ScanUsage(ct, ce) {
			t.Fatal("not scanned")
		}
	}))
}
