package accesslog

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/internal/proctest"
)

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(time.Millisecond)
	}
}

// entryFor is a typical entry whose path names the loop and sequence.
func entryFor(loop, seq int, scratch []byte) (Entry, []byte) {
	scratch = append(scratch[:0], "/l"...)
	scratch = strconv.AppendInt(scratch, int64(loop), 10)
	scratch = append(scratch, '/')
	scratch = strconv.AppendInt(scratch, int64(seq), 10)
	e := fullEntry()
	e.Path = scratch
	return e, scratch
}

// readPaths returns the decoded path of every line of the given files.
func readPaths(t *testing.T, files ...string) []string {
	t.Helper()
	var paths []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		if len(data) > 0 {
			require.Equal(t, byte('\n'), data[len(data)-1], "%s ends mid-line", f)
		}
		for line := range bytes.Lines(data) {
			paths = append(paths, parseLine(t, line)["path"])
		}
	}
	return paths
}

// pace keeps a test loop from outrunning the writer: it waits while the
// loop's buffer is past the threshold and no spare is free, so no line is
// dropped. It runs on the loop, so it may read loop state.
func pace(b *Buffer) {
	for len(b.cur) >= b.w.size && b.nbuf >= b.w.maxBuf && b.spare.head.Load() == b.spare.tail.Load() {
		runtime.Gosched()
	}
}

// TestConcurrentLoopsExactlyOnce: several goroutines act as event loops,
// appending and ticking; after Close every line is in the file exactly once,
// whole, and each loop's lines are in the order appended.
func TestConcurrentLoopsExactlyOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	const loops, perLoop = 8, 5000
	w, err := New(path, loops, Options{BufferSize: 8192, FlushInterval: time.Millisecond})
	require.NoError(t, err)

	var wg sync.WaitGroup
	for l := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := w.Loop(l)
			var scratch []byte
			for i := range perLoop {
				var e Entry
				e, scratch = entryFor(l, i, scratch)
				pace(b)
				b.Append(&e)
				if i%50 == 0 {
					b.Tick()
				}
			}
		}()
	}
	wg.Wait()
	require.NoError(t, w.Close())
	require.NoError(t, w.Close()) // idempotent

	paths := readPaths(t, path)
	require.Len(t, paths, loops*perLoop)
	next := make([]int, loops)
	for _, p := range paths {
		var l, i int
		parts := strings.Split(strings.TrimPrefix(p, "/l"), "/")
		require.Len(t, parts, 2, p)
		l, _ = strconv.Atoi(parts[0])
		i, _ = strconv.Atoi(parts[1])
		require.Equal(t, next[l], i, "loop %d out of order", l)
		next[l]++
	}
	st := w.Stats()
	assert.Equal(t, Stats{Written: loops * perLoop}, st)
}

// TestTickFlushesIdleLoop: a line on a loop that appends nothing more
// reaches the file through Tick (the engine's sweep), without Close.
func TestTickFlushesIdleLoop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	w, err := New(path, 2, Options{FlushInterval: 5 * time.Millisecond})
	require.NoError(t, err)
	defer w.Close()
	b := w.Loop(1)
	e := fullEntry()
	b.Append(&e)
	waitFor(t, 5*time.Second, func() bool {
		b.Tick() // on the "loop": this goroutine is loop 1
		return w.Stats().Written == 1
	})
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, string(AppendEntry(nil, &e)), string(data))
}

// TestReopenAfterRename is logrotate: mv access.log access.log.1, then
// SIGUSR1 → Reopen. Lines before the rename stay in access.log.1, lines
// after Reopen go to a new access.log, none is lost or doubled.
func TestReopenAfterRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	w, err := New(path, 1, Options{FlushInterval: time.Millisecond})
	require.NoError(t, err)
	b := w.Loop(0)
	var scratch []byte
	for i := range 100 {
		var e Entry
		e, scratch = entryFor(0, i, scratch)
		b.Append(&e)
	}
	waitFor(t, 5*time.Second, func() bool { b.Tick(); return w.Stats().Written == 100 })

	require.NoError(t, os.Rename(path, path+".1"))
	require.NoError(t, w.Reopen())
	for i := 100; i < 300; i++ {
		var e Entry
		e, scratch = entryFor(0, i, scratch)
		b.Append(&e)
	}
	require.NoError(t, w.Close())

	old, cur := readPaths(t, path+".1"), readPaths(t, path)
	require.Len(t, old, 100)
	require.Len(t, cur, 200)
	for i, p := range old {
		assert.Equal(t, "/l0/"+strconv.Itoa(i), p)
	}
	for i, p := range cur {
		assert.Equal(t, "/l0/"+strconv.Itoa(100+i), p)
	}
	assert.NoError(t, w.Reopen(), "Reopen after Close does nothing")
	_, err = os.Stat(path)
	assert.NoError(t, err)
}

// TestReopenConcurrent: Reopen from another goroutine (the signal handler)
// while the loop appends and the file is renamed each time: every line is in
// exactly one of the files.
func TestReopenConcurrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	w, err := New(path, 1, Options{BufferSize: 512, FlushInterval: time.Millisecond})
	require.NoError(t, err)
	const n = 3000
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := w.Loop(0)
		var scratch []byte
		for i := range n {
			var e Entry
			e, scratch = entryFor(0, i, scratch)
			pace(b)
			b.Append(&e)
		}
	}()
	files := []string{}
	for r := 0; ; r++ {
		select {
		case <-done:
		default:
			rot := path + "." + strconv.Itoa(r)
			require.NoError(t, os.Rename(path, rot))
			files = append(files, rot)
			require.NoError(t, w.Reopen())
			time.Sleep(time.Millisecond)
			continue
		}
		break
	}
	require.NoError(t, w.Close())
	paths := readPaths(t, append(files, path)...)
	require.Len(t, paths, n)
	for i, p := range paths {
		require.Equal(t, "/l0/"+strconv.Itoa(i), p)
	}
}

// TestDropsWhenWriterBlocked: the log is a FIFO nobody reads, so the
// writer goroutine blocks on its first full pipe. The loop never blocks:
// it keeps appending, memory stays within its buffers, and the lines it
// cannot hand over are counted and reported. Once the pipe is read, every
// line not dropped arrives.
func TestDropsWhenWriterBlocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.fifo")
	require.NoError(t, syscall.Mkfifo(path, 0o600))
	rd, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	require.NoError(t, err)
	defer rd.Close()

	var logged proctest.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	w, err := New(path, 1, Options{BufferSize: 4096, FlushInterval: time.Millisecond, Logger: log})
	require.NoError(t, err)

	b := w.Loop(0)
	const n = 100_000 // ~30 MB of lines against a 64 KiB pipe
	var scratch []byte
	for i := range n {
		var e Entry
		e, scratch = entryFor(0, i, scratch)
		b.Append(&e)
		if i%1000 == 0 {
			b.Tick()
		}
	}
	st := w.Stats()
	assert.Greater(t, st.Dropped, uint64(n/2))
	// Bounded memory: never more than MaxBuffers buffers, none grown.
	assert.LessOrEqual(t, b.nbuf, b.w.maxBuf)
	assert.Equal(t, b.w.capa, cap(b.cur))
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(logged.String(), "lines dropped") })

	// Drain the pipe; Close then writes the rest and closes it.
	got := make(chan []string)
	go func() {
		var paths []string
		sc := bufio.NewScanner(rd)
		for sc.Scan() {
			paths = append(paths, sc.Text())
		}
		got <- paths
	}()
	require.NoError(t, w.Close())
	lines := <-got
	st = w.Stats()
	assert.Equal(t, uint64(n), st.Written+st.Dropped)
	assert.Equal(t, int(st.Written), len(lines))
	assert.Zero(t, st.Failed)
	// The lines that arrived are whole and in order (drops only leave gaps).
	last := -1
	for _, l := range lines {
		p := parseLine(t, []byte(l+"\n"))["path"]
		i, err := strconv.Atoi(strings.TrimPrefix(p, "/l0/"))
		require.NoError(t, err)
		require.Greater(t, i, last)
		last = i
	}
	assert.Contains(t, logged.String(), "dropped_total=")
}

// TestWriteErrorsCounted: lines the file refuses are counted as failed and
// logged, and the loop goes on.
func TestWriteErrorsCounted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	var logged proctest.Buffer
	w, err := New(path, 1, Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	require.NoError(t, err)
	// Swap the file for a read-only one: writes fail with EBADF.
	ro, err := os.Open(path)
	require.NoError(t, err)
	w.mu.Lock()
	old := w.file
	w.file, w.out = ro, ro
	w.mu.Unlock()
	require.NoError(t, old.Close())

	e := fullEntry()
	w.Loop(0).Append(&e)
	w.Loop(0).Append(&e)
	require.NoError(t, w.Close())
	assert.Equal(t, Stats{Failed: 2}, w.Stats())
	assert.Contains(t, logged.String(), "write failed")
}

// TestRelativePathCreatesDir: the default logs/access.log is relative to the
// working directory, and logs/ is created.
func TestRelativePathCreatesDir(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	w, err := New("logs/access.log", 1, Options{})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "logs", "access.log"), w.Path())
	e := fullEntry()
	w.Loop(0).Append(&e)
	require.NoError(t, w.Close())
	data, err := os.ReadFile(filepath.Join(dir, "logs", "access.log"))
	require.NoError(t, err)
	assert.Equal(t, string(AppendEntry(nil, &e)), string(data))

	// An existing file is appended to, not truncated.
	w, err = New("logs/access.log", 1, Options{})
	require.NoError(t, err)
	w.Loop(0).Append(&e)
	require.NoError(t, w.Close())
	data, err = os.ReadFile(filepath.Join(dir, "logs", "access.log"))
	require.NoError(t, err)
	assert.Equal(t, strings.Repeat(string(AppendEntry(nil, &e)), 2), string(data))
}

func TestOpenError(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o644))
	_, err := New(filepath.Join(blocker, "access.log"), 1, Options{})
	assert.Error(t, err, "parent is a file")
	_, err = New(filepath.Join(dir, "a.log"), 0, Options{})
	assert.Error(t, err)
}

// TestStdout: "-" writes to the process's stdout, and Close leaves it open.
func TestStdout(t *testing.T) {
	r, wr, err := os.Pipe()
	require.NoError(t, err)
	saved := os.Stdout
	os.Stdout = wr
	w, err := New("-", 1, Options{})
	os.Stdout = saved
	require.NoError(t, err)
	assert.Equal(t, "-", w.Path())
	e := fullEntry()
	w.Loop(0).Append(&e)
	require.NoError(t, w.Reopen()) // nothing to reopen
	require.NoError(t, w.Close())
	_, err = wr.Write([]byte("still open\n"))
	require.NoError(t, err)
	require.NoError(t, wr.Close())
	data, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Equal(t, string(AppendEntry(nil, &e))+"still open\n", string(data))
}

// TestNilWriter: a disabled access log is a nil *Writer; the engine and
// main may call it without checks.
func TestNilWriter(t *testing.T) {
	var w *Writer
	b := w.Loop(3)
	assert.Nil(t, b)
	e := fullEntry()
	b.Append(&e)
	b.Tick()
	assert.NoError(t, w.Reopen())
	assert.NoError(t, w.Close())
	assert.Equal(t, Stats{}, w.Stats())
}

// TestIPv6ClientLine: the engine's typical dual-stack entry, end to end
// through a Writer.
func TestIPv6ClientLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	w, err := New(path, 1, Options{})
	require.NoError(t, err)
	e := fullEntry()
	e.ClientAddr = netip.MustParseAddrPort("[::ffff:192.0.2.7]:1234")
	w.Loop(0).Append(&e)
	require.NoError(t, w.Close())
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(data), " client=192.0.2.7:1234 ")
}
