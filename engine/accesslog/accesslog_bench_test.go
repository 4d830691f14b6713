package accesslog

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkAppend is the hot-path cost per request: format the line into
// the loop's buffer and, every BufferSize bytes, hand it to the writer
// goroutine, which writes it to a file. dropped/op > 0 means the disk (or
// the writer) fell behind the benchmark loop.
func BenchmarkAppend(b *testing.B) {
	b.Run("devnull", func(b *testing.B) { benchAppend(b, os.DevNull, false) })
	b.Run("file", func(b *testing.B) { benchAppend(b, filepath.Join(b.TempDir(), "access.log"), false) })
	// paced: the loop waits for the writer instead of dropping, so ns/op
	// is the sustained rate of the whole path (format, hand-off, write).
	b.Run("paced-file", func(b *testing.B) { benchAppend(b, filepath.Join(b.TempDir(), "access.log"), true) })
}

func benchAppend(b *testing.B, path string, paced bool) {
	w, err := New(path, 1, Options{})
	if err != nil {
		b.Fatal(err)
	}
	buf := w.Loop(0)
	e := fullEntry()
	b.SetBytes(int64(len(AppendEntry(nil, &e))))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		e.Time += 1000 // 1 µs apart
		if paced {
			pace(buf)
		}
		buf.Append(&e)
	}
	b.StopTimer()
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	st := w.Stats()
	if st.Written+st.Dropped != uint64(b.N) {
		b.Fatalf("written %d + dropped %d != %d", st.Written, st.Dropped, b.N)
	}
	b.ReportMetric(float64(st.Dropped)/float64(b.N), "dropped/op")
}

// BenchmarkAppendEntry is the formatting alone.
func BenchmarkAppendEntry(b *testing.B) {
	e := fullEntry()
	dst := make([]byte, 0, 4096)
	b.SetBytes(int64(len(AppendEntry(nil, &e))))
	b.ReportAllocs()
	for range b.N {
		dst = AppendEntry(dst[:0], &e)
	}
}
