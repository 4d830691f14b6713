//go:build !race

package accesslog

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAppendAllocs: once a loop owns its buffers, Append (formatting, the
// per-second time prefix, hand-offs to the writer) and Tick allocate
// nothing. MaxBuffers 2 makes "owns its buffers" deterministic: both exist
// after the first hand-off.
func TestAppendAllocs(t *testing.T) {
	w, err := New(filepath.Join(t.TempDir(), "access.log"), 1, Options{BufferSize: 4096, MaxBuffers: 2})
	require.NoError(t, err)
	defer w.Close()
	b := w.Loop(0)
	e := fullEntry()
	for b.nbuf < 2 {
		b.Append(&e)
	}
	allocs := testing.AllocsPerRun(2000, func() {
		e.Time += 7e8 // a new second every other line: the date prefix is rebuilt
		b.Append(&e)
		b.Tick()
	})
	require.Zero(t, allocs)

	// Formatting alone, into a buffer with room.
	dst := make([]byte, 0, 4096)
	allocs = testing.AllocsPerRun(200, func() {
		dst = AppendEntry(dst[:0], &e)
	})
	require.Zero(t, allocs)
}
