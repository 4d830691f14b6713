package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openTest(t *testing.T, dir string, opts ...Option) *Embedded {
	t.Helper()
	opts = append([]Option{WithLogger(discardLogger())}, opts...)
	s, err := OpenEmbedded(dir, "", opts...)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestEmbeddedCRUD(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	s := openTest(t, dir)

	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	assert.Equal(t, "/apisix", s.Prefix())
	assert.Equal(t, int64(0), s.Revision())

	_, ok, err := s.Get(ctx, "/apisix/routes/1")
	require.NoError(t, err)
	assert.False(t, ok)

	created, err := s.Put(ctx, "/apisix/routes/1", []byte(`{"uri": "/a"}`))
	require.NoError(t, err)
	assert.True(t, created)
	created, err = s.Put(ctx, "/apisix/routes/1", []byte(`{"uri":  "/b"}`))
	require.NoError(t, err)
	assert.False(t, created)
	created, err = s.Put(ctx, "/apisix/upstreams/u1", []byte("not json \x00\xff"))
	require.NoError(t, err)
	assert.True(t, created)
	_, err = s.Put(ctx, "/apisix/routes/0", []byte(`{}`))
	require.NoError(t, err)

	kv, ok, err := s.Get(ctx, "/apisix/routes/1")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, `{"uri":  "/b"}`, string(kv.Value), "bytes kept verbatim")
	assert.Equal(t, int64(2), kv.Revision)
	assert.Equal(t, int64(4), s.Revision())

	kv, ok, err = s.Get(ctx, "/apisix/upstreams/u1")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "not json \x00\xff", string(kv.Value))

	list, err := s.List(ctx, "/apisix/routes/")
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "/apisix/routes/0", list[0].Key)
	assert.Equal(t, "/apisix/routes/1", list[1].Key)
	all, err := s.List(ctx, "")
	require.NoError(t, err)
	assert.Len(t, all, 3)
	none, err := s.List(ctx, "/apisix/ssls/")
	require.NoError(t, err)
	assert.NotNil(t, none)
	assert.Empty(t, none)

	// Returned values are copies.
	list[0].Value[0] = 'X'
	kv, _, _ = s.Get(ctx, "/apisix/routes/0")
	assert.Equal(t, "{}", string(kv.Value))

	existed, err := s.Delete(ctx, "/apisix/routes/1")
	require.NoError(t, err)
	assert.True(t, existed)
	existed, err = s.Delete(ctx, "/apisix/routes/1")
	require.NoError(t, err)
	assert.False(t, existed)
	assert.Equal(t, int64(5), s.Revision(), "deleting a missing key changes nothing")
	_, ok, _ = s.Get(ctx, "/apisix/routes/1")
	assert.False(t, ok)

	_, err = s.Put(ctx, "", []byte("{}"))
	assert.Error(t, err)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = s.Put(cctx, "/apisix/routes/9", []byte("{}"))
	assert.ErrorIs(t, err, context.Canceled)

	require.NoError(t, s.Close())
	_, _, err = s.Get(ctx, "/apisix/routes/0")
	assert.ErrorIs(t, err, ErrClosed)
	_, err = s.Put(ctx, "/apisix/routes/0", []byte("{}"))
	assert.ErrorIs(t, err, ErrClosed)
	assert.NoError(t, s.Close(), "Close twice")
}

func TestEmbeddedReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenEmbedded(dir, "/custom/", WithLogger(discardLogger()))
	require.NoError(t, err)
	assert.Equal(t, "/custom", s.Prefix())
	for i := range 50 {
		_, err := s.Put(ctx, fmt.Sprintf("/custom/routes/%03d", i), []byte(fmt.Sprintf(`{"i":%d}`, i)))
		require.NoError(t, err)
	}
	for i := 0; i < 50; i += 5 {
		_, err := s.Delete(ctx, fmt.Sprintf("/custom/routes/%03d", i))
		require.NoError(t, err)
	}
	rev := s.Revision()
	require.NoError(t, s.Close())

	s2 := openTest(t, dir)
	assert.Equal(t, rev, s2.Revision())
	list, err := s2.List(ctx, "/custom/routes/")
	require.NoError(t, err)
	assert.Len(t, list, 40)
	kv, ok, err := s2.Get(ctx, "/custom/routes/007")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, `{"i":7}`, string(kv.Value))
	assert.Equal(t, int64(8), kv.Revision)
	created, err := s2.Put(ctx, "/custom/routes/007", []byte(`{}`))
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, rev+1, s2.Revision())
}

func TestEmbeddedLock(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenEmbedded(dir, "", WithLogger(discardLogger()))
	require.NoError(t, err)
	_, err = OpenEmbedded(dir, "", WithLogger(discardLogger()))
	require.Error(t, err)
	assert.Contains(t, err.Error(), dir+" is in use by another sluice")
	require.NoError(t, s.Close())
	s2, err := OpenEmbedded(dir, "", WithLogger(discardLogger()))
	require.NoError(t, err, "the lock is released by Close")
	require.NoError(t, s2.Close())
}

// writeRecords makes a store in dir with n keys and returns the log size
// after each Put (ends[i] = size after key i).
func writeRecords(t *testing.T, dir string, n int) []int64 {
	t.Helper()
	s, err := OpenEmbedded(dir, "", WithLogger(discardLogger()))
	require.NoError(t, err)
	var ends []int64
	for i := range n {
		_, err := s.Put(context.Background(), fmt.Sprintf("/apisix/routes/%d", i), []byte(fmt.Sprintf(`{"id":"%d","uri":"/r/%d"}`, i, i)))
		require.NoError(t, err)
		fi, err := os.Stat(filepath.Join(dir, logName))
		require.NoError(t, err)
		ends = append(ends, fi.Size())
	}
	require.NoError(t, s.Close())
	return ends
}

func copyLog(t *testing.T, from, to string, mutate func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(from, logName))
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(to, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(to, logName), mutate(b), 0o600))
}

func TestEmbeddedTornLastRecord(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	const n = 5
	ends := writeRecords(t, src, n)
	lastStart, lastEnd := ends[n-2], ends[n-1]

	cases := map[string]func([]byte) []byte{}
	for _, cut := range []int64{1, 4, 7, recHeader, recHeader + 1, (lastEnd - lastStart) / 2, lastEnd - lastStart - 1} {
		cases[fmt.Sprintf("cut at +%d", cut)] = func(b []byte) []byte { return b[:lastStart+cut] }
	}
	cases["zero-filled tail"] = func(b []byte) []byte {
		out := append([]byte(nil), b[:lastStart]...)
		return append(out, make([]byte, lastEnd-lastStart)...)
	}
	cases["last record's data never written"] = func(b []byte) []byte {
		out := append([]byte(nil), b...)
		for i := lastStart + recHeader; i < lastEnd; i++ {
			out[i] = 0
		}
		return out
	}
	cases["zeros after the last complete record"] = func(b []byte) []byte {
		return append(append([]byte(nil), b[:lastStart]...), make([]byte, 4096)...)
	}

	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			copyLog(t, src, dir, mutate)
			s, err := OpenEmbedded(dir, "", WithLogger(discardLogger()))
			require.NoError(t, err)
			list, err := s.List(ctx, "/apisix/routes/")
			require.NoError(t, err)
			assert.Len(t, list, n-1, "every complete record recovered")
			_, ok, _ := s.Get(ctx, fmt.Sprintf("/apisix/routes/%d", n-1))
			assert.False(t, ok, "the torn record is dropped")
			fi, err := os.Stat(filepath.Join(dir, logName))
			require.NoError(t, err)
			assert.Equal(t, lastStart, fi.Size(), "the torn tail is cut off")
			aside, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%s.torn-%d", logName, lastStart)))
			require.NoError(t, err, "the cut-off bytes are kept aside")
			full, _ := os.ReadFile(filepath.Join(src, logName))
			assert.Equal(t, mutate(append([]byte(nil), full...))[lastStart:], aside)
			assert.Equal(t, int64(n-1), s.Revision())

			// Writing after recovery, and reopening, works.
			_, err = s.Put(ctx, "/apisix/routes/new", []byte(`{}`))
			require.NoError(t, err)
			require.NoError(t, s.Close())
			s2 := openTest(t, dir)
			list, err = s2.List(ctx, "/apisix/routes/")
			require.NoError(t, err)
			assert.Len(t, list, n)
		})
	}
}

func TestEmbeddedCorruptMiddle(t *testing.T) {
	src := t.TempDir()
	const n = 5
	ends := writeRecords(t, src, n)
	second := ends[0] // where record 1 starts

	cases := map[string]func([]byte) []byte{
		"payload byte flipped": func(b []byte) []byte {
			b[second+recHeader+5] ^= 0x20
			return b
		},
		"crc flipped": func(b []byte) []byte {
			b[second+5] ^= 0x01
			return b
		},
		"length grown": func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[second:], binary.LittleEndian.Uint32(b[second:])+1)
			return b
		},
		"length huge": func(b []byte) []byte {
			b[second+3] = 0x7f
			return b
		},
		"length runs past the end": func(b []byte) []byte { // bit 20: 1 MiB more
			b[second+2] ^= 0x10
			return b
		},
		"garbage in the middle": func(b []byte) []byte {
			out := append([]byte(nil), b[:second]...)
			out = append(out, []byte("this is not a record at all, definitely")...)
			return append(out, b[second:]...)
		},
		"bad magic": func(b []byte) []byte {
			b[0] = 'X'
			return b
		},
		"not a store file": func(b []byte) []byte {
			return []byte("hello")
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			copyLog(t, src, dir, mutate)
			before, _ := os.ReadFile(filepath.Join(dir, logName))
			s, err := OpenEmbedded(dir, "", WithLogger(discardLogger()))
			if s != nil {
				s.Close()
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), filepath.Join(dir, logName))
			assert.Contains(t, err.Error(), "corrupt")
			var ce *CorruptError
			require.True(t, errors.As(err, &ce))
			after, _ := os.ReadFile(filepath.Join(dir, logName))
			assert.Equal(t, before, after, "a corrupt log is left untouched")
			// And the directory is not left locked.
			_, err = OpenEmbedded(dir, "", WithLogger(discardLogger()))
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "in use")
		})
	}
}

func TestEmbeddedCompaction(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenEmbedded(dir, "", WithLogger(discardLogger()), withCompactMin(8<<10))
	require.NoError(t, err)
	logPath := filepath.Join(dir, logName)
	pad := strings.Repeat("x", 100)
	var maxSize int64
	compactions := 0
	var prev int64
	for round := range 200 {
		for k := range 10 {
			_, err := s.Put(ctx, fmt.Sprintf("/apisix/routes/%d", k), []byte(fmt.Sprintf(`{"round":%d,"pad":"%s"}`, round, pad)))
			require.NoError(t, err)
			fi, err := os.Stat(logPath)
			require.NoError(t, err)
			if fi.Size() < prev {
				compactions++
			}
			prev = fi.Size()
			maxSize = max(maxSize, fi.Size())
		}
	}
	for k := 5; k < 10; k++ {
		_, err := s.Delete(ctx, fmt.Sprintf("/apisix/routes/%d", k))
		require.NoError(t, err)
	}
	require.NoError(t, s.Compact())
	assert.Greater(t, compactions, 5, "the log was compacted as it grew")
	assert.LessOrEqual(t, maxSize, int64(8<<10)+1024, "the log never grew far past the threshold")
	rev := s.Revision()
	assert.Equal(t, int64(2005), rev)
	require.NoError(t, s.Close())
	_, err = os.Stat(filepath.Join(dir, tmpName))
	assert.True(t, os.IsNotExist(err), "no temporary file left")

	s2 := openTest(t, dir)
	assert.Equal(t, rev, s2.Revision(), "the revision survives compaction")
	list, err := s2.List(ctx, "")
	require.NoError(t, err)
	require.Len(t, list, 5)
	for k, kv := range list {
		assert.Equal(t, fmt.Sprintf("/apisix/routes/%d", k), kv.Key)
		assert.Equal(t, fmt.Sprintf(`{"round":199,"pad":"%s"}`, pad), string(kv.Value))
		assert.Equal(t, int64(1990+k+1), kv.Revision)
	}
	_, err = s2.Put(ctx, "/apisix/routes/0", []byte(`{}`))
	require.NoError(t, err)
	assert.Equal(t, rev+1, s2.Revision())
}

// TestEmbeddedCompactionDirSyncFails: a compaction whose rename happened
// but whose directory fsync failed still switches to the new log, so the
// writes acknowledged after it are not appended to the old, unlinked file.
func TestEmbeddedCompactionDirSyncFails(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	_, err := s.Put(ctx, "/apisix/routes/1", []byte(`{"a":1}`))
	require.NoError(t, err)
	defer func(f func(string) error) { syncDir = f }(syncDir)
	syncDir = func(string) error { return errors.New("EIO") }
	require.Error(t, s.Compact())
	syncDir = syncDirOS
	_, err = s.Put(ctx, "/apisix/routes/2", []byte(`{"b":2}`))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	s2 := openTest(t, dir)
	list, err := s2.List(ctx, "/apisix/routes/")
	require.NoError(t, err)
	assert.Len(t, list, 2, "the write after the failed compaction survived")
}

func TestEmbeddedStaleSnapshotIgnored(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeRecords(t, dir, 3)
	// A crash during compaction leaves a partial temp file: ignored, removed.
	require.NoError(t, os.WriteFile(filepath.Join(dir, tmpName), []byte("SLUICE1\npartial"), 0o600))
	s := openTest(t, dir)
	list, err := s.List(ctx, "")
	require.NoError(t, err)
	assert.Len(t, list, 3)
	_, err = os.Stat(filepath.Join(dir, tmpName))
	assert.True(t, os.IsNotExist(err))
}

func TestEmbeddedConcurrent(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), withCompactMin(16<<10))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := s.Watch(wctx)
	const writers, per = 8, 60
	var seen []int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range events {
			seen = append(seen, ev.KV.Revision)
			if len(seen) == writers*per {
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				key := fmt.Sprintf("/apisix/routes/%d-%d", w, i%20)
				_, err := s.Put(ctx, key, []byte(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i)))
				assert.NoError(t, err)
				_, _, err = s.Get(ctx, key)
				assert.NoError(t, err)
				if i%10 == 0 {
					_, err = s.List(ctx, "/apisix/")
					assert.NoError(t, err)
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("watcher did not see every write")
	}
	assert.Equal(t, int64(writers*per), s.Revision())
	for i, r := range seen {
		assert.Equal(t, int64(i+1), r, "events in revision order")
	}
	list, err := s.List(ctx, "")
	require.NoError(t, err)
	assert.Len(t, list, writers*20)
}

func TestEmbeddedWatch(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir())
	_, err := s.Put(ctx, "/apisix/routes/before", []byte(`{}`))
	require.NoError(t, err)

	wctx, cancel := context.WithCancel(ctx)
	ch := s.Watch(wctx)
	_, err = s.Put(ctx, "/apisix/routes/1", []byte(`{"a":1}`))
	require.NoError(t, err)
	_, err = s.Delete(ctx, "/apisix/routes/1")
	require.NoError(t, err)

	ev := recv(t, ch)
	assert.Equal(t, EventPut, ev.Type)
	assert.Equal(t, "/apisix/routes/1", ev.KV.Key)
	assert.Equal(t, `{"a":1}`, string(ev.KV.Value))
	assert.Equal(t, int64(2), ev.KV.Revision)
	ev = recv(t, ch)
	assert.Equal(t, EventDelete, ev.Type)
	assert.Equal(t, "/apisix/routes/1", ev.KV.Key)
	assert.Equal(t, int64(3), ev.KV.Revision)

	cancel()
	expectClosed(t, ch)

	// Close ends every watcher.
	ch2 := s.Watch(ctx)
	require.NoError(t, s.Close())
	expectClosed(t, ch2)
	expectClosed(t, s.Watch(ctx))
}

func TestEmbeddedSlowWatcherGetsResync(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), WithWatchQueue(8))
	ch := s.Watch(ctx)
	start := time.Now()
	for i := range 100 {
		_, err := s.Put(ctx, fmt.Sprintf("/apisix/routes/%d", i), []byte(`{}`))
		require.NoError(t, err)
	}
	assert.Less(t, time.Since(start), 10*time.Second, "writers never wait for a watcher")
	var got []Event
	for len(got) == 0 || got[len(got)-1].KV.Revision != 100 {
		got = append(got, recv(t, ch))
	}
	assert.LessOrEqual(t, len(got), 10)
	resyncs := 0
	for _, ev := range got {
		if ev.Type == EventResync {
			resyncs++
		}
	}
	assert.Equal(t, 1, resyncs, "the backlog became one EventResync: %v", got)
}

func recv(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		require.True(t, ok, "watch channel closed")
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return Event{}
}

func expectClosed(t *testing.T, ch <-chan Event) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("watch channel not closed")
		}
	}
}
