//go:build !race

package plugin

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestUsageScannerAlloc(t *testing.T) {
	plain := []byte(chatSSE)
	framed := chunk([]byte(chatJSON), 40)
	var s UsageScanner
	n := testing.AllocsPerRun(200, func() {
		s.Reset(false)
		for i := 0; i < len(plain); i += 16 {
			s.Feed(plain[i:min(i+16, len(plain))])
		}
		s.Reset(true)
		for i := 0; i < len(framed); i += 7 {
			s.Feed(framed[i:min(i+7, len(framed))])
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
