// Package accesslog writes sluice's access log (SPEC §8): one line per
// request, buffered per event loop, written to disk by one goroutine.
//
// # Format
//
// Each line is logfmt: space-separated key=value pairs, always the same keys
// in the same order, ending in a newline. A value that is absent is "-".
// path, upstream_uri and ua are always double-quoted; the other text values
// are quoted only when they need it (empty, "-", or any byte other than
// printable ASCII without space, '=', '"' and '\'). Inside quotes '"' and '\'
// are escaped with a backslash, newline, CR and tab as \n \r \t, and any
// other control byte, invalid UTF-8 byte, C1 control, U+2028 or U+2029 as
// \xHH (per byte); other UTF-8 text is kept. A line therefore never holds a
// raw control byte, and grep patterns such as 'arm=0/1 ' or
// 'upstream=127.0.0.1:1980 ' match whole fields.
//
//	time=2026-11-25T16:58:51.123Z client=127.0.0.1:5555 method=POST host=api.example.com path="/v1/chat/completions?stream=1" status=200 bytes=512 request_time=0.012 upstream=127.0.0.1:1980 upstream_status=200 upstream_time=0.011 route=chat arm=0/1 upstream_uri="/v2/chat/completions?stream=1" consumer=jack ua="curl/8.5.0"
//
//	| key             | value                                                                 |
//	|-----------------|-----------------------------------------------------------------------|
//	| time            | end of the request, UTC, RFC 3339 with milliseconds                  |
//	| client          | client address ip:port ([ip]:port for IPv6)                           |
//	| method          | request method                                                        |
//	| host            | Host header as received                                               |
//	| path            | request target as received, query included (quoted)                  |
//	| status          | status sent to the client; 499 if it closed before the answer         |
//	| bytes           | bytes sent to the client, response head included                      |
//	| request_time    | seconds from the first request byte to the last response byte (ms)   |
//	| upstream        | upstream node ip:port; - when nothing was sent upstream               |
//	| upstream_status | upstream's response status; - when it sent none                       |
//	| upstream_time   | seconds from connecting upstream to the end of its response; - if none|
//	| route           | matched route id; - when no route matched                             |
//	| arm             | traffic-split arm, "rule/arm" (0-based, as in the config); - if none  |
//	| upstream_uri    | path and query sent upstream, after rewrites (quoted); - if none      |
//	| consumer        | authenticated consumer's username; - if none                          |
//	| ua              | User-Agent header (quoted); - if none                                 |
//
// Counting a split's arms (SPEC §8, the guide's method):
//
//	grep -c ' route=chat arm=0/0 ' logs/access.log
//	grep -c ' upstream=127.0.0.1:1980 ' logs/access.log
//
// # Buffers and the hot path
//
// Each event loop owns one Buffer (Writer.Loop). Append formats the line into
// the loop's current byte slice: no lock, no allocation once the loop's
// buffers exist, no write(2). When the slice passes Options.BufferSize, or on
// the first Append or Tick after the Writer's flush timer fired (every
// Options.FlushInterval), the loop hands the slice to the writer goroutine
// through a single-producer single-consumer ring of atomics and takes an
// empty one back through another. It then wakes the writer with a
// non-blocking channel send, only if no wake-up is already pending; the Go
// runtime may wake a thread for it, the one syscall a loop can make here, at
// most once per hand-off (per BufferSize bytes or flush interval), never per
// request. The timer goroutine never touches a buffer a loop appends to: it
// only advances an atomic epoch the loops compare against.
//
// A loop owns at most Options.MaxBuffers slices. If the disk cannot keep up
// and all are in the writer's hands, the loop keeps appending to its current
// slice up to 1.5 times BufferSize, then drops lines and counts them: it
// never blocks and memory stays bounded (by default at most 8 buffers of
// 100 KiB per loop, allocated as needed; 2 while the disk keeps up). Dropped
// lines are reported in the gateway's log (at most once per second) and by
// Writer.Stats.
package accesslog

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Options tunes a Writer; zero values take the defaults.
type Options struct {
	// BufferSize is the per-loop flush threshold in bytes (default 64 KiB).
	// While the writer is behind, a loop's buffer takes up to 1.5 times
	// this before lines are dropped.
	BufferSize int
	// MaxBuffers is the number of buffers a loop may own: the one it
	// appends to plus those handed to the writer (default 8, minimum 2).
	// They are allocated when first needed; a loop whose writer keeps up
	// uses two.
	MaxBuffers int
	// FlushInterval bounds how long a line waits in a loop's buffer, given
	// that the loop calls Append or Tick at least that often (default
	// 100 ms).
	FlushInterval time.Duration
	// Logger receives write errors and dropped-line reports (default: none).
	Logger *slog.Logger
}

// Stats counts lines since New.
type Stats struct {
	Written uint64 // lines written to the file
	Dropped uint64 // lines dropped because the writer was behind
	Failed  uint64 // lines lost to write errors
}

// Writer is an access log: one Buffer per event loop and one goroutine that
// writes full buffers to the file.
type Writer struct {
	path   string // absolute; "" = stdout
	bufs   []*Buffer
	size   int // flush threshold
	hard   int // drop lines past this length when no spare buffer is free
	capa   int // capacity of a new buffer
	maxBuf int
	log    *slog.Logger

	epoch       atomic.Uint64 // advanced by the flush timer
	wake        chan struct{}
	wakePending atomic.Bool
	done        chan struct{}
	wg          sync.WaitGroup // run and timer
	closeOnce   sync.Once

	// mu guards out and closed against Reopen and Close. It is taken by the
	// writer goroutine, Reopen and Close, never by an event loop.
	mu     sync.Mutex
	out    io.Writer // *os.File, or os.Stdout
	file   *os.File  // nil for stdout
	closed bool

	written, failed atomic.Uint64

	reported   Stats     // timer goroutine (and Close, after it exited) only
	lastReport time.Time // likewise
	lastErr    time.Time // writer goroutine (and Close, after it exited) only
}

// Buffer is one event loop's part of the access log. Append and Tick must
// be called only on that loop.
type Buffer struct {
	w    *Writer
	cur  []byte
	seen uint64 // flush epoch at the last hand-off
	nbuf int    // buffers this loop has allocated
	tc   timeCache

	full  ring // loop → writer
	spare ring // writer → loop

	dropped atomic.Uint64
	_       [64]byte // keep the next loop's Buffer off this cache line
}

const (
	defaultBufferSize    = 64 << 10
	defaultMaxBuffers    = 8
	defaultFlushInterval = 100 * time.Millisecond
	lineSlack            = 4 << 10 // room past the hard limit for one typical line
)

// New opens path for appending (creating it and its directory when missing;
// a relative path is relative to the working directory, "-" is stdout) and
// starts the writer goroutine. loops is the number of event loops.
func New(path string, loops int, opts Options) (*Writer, error) {
	if loops < 1 {
		return nil, errors.New("accesslog: loops must be at least 1")
	}
	if opts.BufferSize <= 0 {
		opts.BufferSize = defaultBufferSize
	}
	if opts.MaxBuffers <= 0 {
		opts.MaxBuffers = defaultMaxBuffers
	}
	if opts.MaxBuffers < 2 {
		opts.MaxBuffers = 2
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = defaultFlushInterval
	}
	w := &Writer{
		size:   opts.BufferSize,
		hard:   opts.BufferSize + opts.BufferSize/2,
		capa:   opts.BufferSize + opts.BufferSize/2 + lineSlack,
		maxBuf: opts.MaxBuffers,
		log:    opts.Logger,
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	if path == "-" {
		w.out = os.Stdout
	} else {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		w.path = abs
		f, err := openFile(abs)
		if err != nil {
			return nil, err
		}
		w.file, w.out = f, f
	}
	w.bufs = make([]*Buffer, loops)
	for i := range w.bufs {
		b := &Buffer{w: w}
		b.full.slots = make([][]byte, w.maxBuf)
		b.spare.slots = make([][]byte, w.maxBuf)
		w.bufs[i] = b
	}
	w.wg.Add(2)
	go w.run()
	go w.timer(opts.FlushInterval)
	return w, nil
}

func openFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
}

// Path is the file written (absolute), or "-" for stdout.
func (w *Writer) Path() string {
	if w.path == "" {
		return "-"
	}
	return w.path
}

// Loop returns event loop i's Buffer (0 <= i < loops). A nil Writer
// returns nil, whose Append and Tick do nothing.
func (w *Writer) Loop(i int) *Buffer {
	if w == nil {
		return nil
	}
	return w.bufs[i]
}

// Append adds e's line to the loop's buffer. It never blocks, takes no
// lock and, once the loop's buffers exist, does not allocate (a line longer
// than about 4 KiB may grow the buffer once); its only possible syscall is
// the writer's wake-up on a hand-off (see the package documentation). When the writer is
// behind and the buffer is full, the line is dropped and counted.
func (b *Buffer) Append(e *Entry) {
	if b == nil {
		return
	}
	if len(b.cur) >= b.w.hard && !b.flush() {
		b.dropped.Add(1)
		return
	}
	if b.cur == nil {
		b.cur = make([]byte, 0, b.w.capa)
		b.nbuf = 1
	}
	b.cur = b.tc.appendEntry(b.cur, e)
	if len(b.cur) >= b.w.size || b.seen != b.w.epoch.Load() {
		b.flush()
	}
}

// Tick hands the buffer to the writer if the flush timer fired since the
// last hand-off. The engine calls it from each loop's periodic sweep so that
// lines of an idle loop reach the file within about FlushInterval plus the
// sweep period.
func (b *Buffer) Tick() {
	if b == nil || b.seen == b.w.epoch.Load() {
		return
	}
	b.flush()
}

// flush hands cur to the writer and takes an empty buffer; it reports
// whether cur is now empty. It fails when every buffer the loop may own is
// with the writer.
func (b *Buffer) flush() bool {
	b.seen = b.w.epoch.Load()
	if len(b.cur) == 0 {
		return true
	}
	next, ok := b.spare.pop()
	if !ok {
		if b.nbuf >= b.w.maxBuf {
			return false
		}
		next = make([]byte, 0, b.w.capa)
		b.nbuf++
	}
	b.full.push(b.cur) // cannot fail: the ring holds every buffer but cur
	b.cur = next
	b.w.notify()
	return true
}

// notify wakes the writer goroutine; only the first hand-off since the
// writer last woke sends on the channel, and the send never blocks.
func (w *Writer) notify() {
	if w.wakePending.Load() || !w.wakePending.CompareAndSwap(false, true) {
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run is the writer goroutine: it writes what the loops hand over.
func (w *Writer) run() {
	defer w.wg.Done()
	for {
		select {
		case <-w.done:
			return
		case <-w.wake:
			w.wakePending.Store(false)
		}
		for _, b := range w.bufs {
			w.drain(b)
		}
	}
}

// timer is the flush timer: it advances the epoch the loops compare
// against, and reports dropped lines even while a write is stuck.
func (w *Writer) timer(interval time.Duration) {
	defer w.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-t.C:
			w.epoch.Add(1)
			w.report(false)
		}
	}
}

// drain writes every buffer b handed over and gives them back empty.
func (w *Writer) drain(b *Buffer) {
	for {
		buf, ok := b.full.pop()
		if !ok {
			return
		}
		w.write(buf)
		b.spare.push(buf[:0]) // cannot fail: the ring holds every buffer
	}
}

// write writes buf, whole lines only, in one call.
func (w *Writer) write(buf []byte) {
	w.mu.Lock()
	var err error
	if w.closed {
		err = os.ErrClosed
	} else {
		_, err = w.out.Write(buf)
	}
	w.mu.Unlock()
	lines := uint64(bytes.Count(buf, nl))
	if err == nil {
		w.written.Add(lines)
		return
	}
	w.failed.Add(lines)
	if w.log != nil && time.Since(w.lastErr) >= time.Second {
		w.lastErr = time.Now()
		w.log.Error("access log: write failed, lines lost", "file", w.Path(), "lines", lines, "err", err)
	}
}

var nl = []byte{'\n'}

// Stats returns the line counts so far. It may be called from any goroutine.
func (w *Writer) Stats() Stats {
	var s Stats
	if w == nil {
		return s
	}
	for _, b := range w.bufs {
		s.Dropped += b.dropped.Load()
	}
	s.Written, s.Failed = w.written.Load(), w.failed.Load()
	return s
}

// report logs lines dropped since the last report, at most once a second
// unless final.
func (w *Writer) report(final bool) {
	if w.log == nil || (!final && time.Since(w.lastReport) < time.Second) {
		return
	}
	s := w.Stats()
	if s.Dropped == w.reported.Dropped {
		return
	}
	w.log.Warn("access log: lines dropped, the disk cannot keep up", "file", w.Path(),
		"dropped", s.Dropped-w.reported.Dropped, "dropped_total", s.Dropped)
	w.reported, w.lastReport = s, time.Now()
}

// Reopen opens the log file again under its path and writes to the new file
// from then on: after logrotate renamed access.log, SIGUSR1 → Reopen starts
// a fresh access.log. Lines not yet written go to the new file; none is
// lost. It may be called from any goroutine (it waits for a write in
// progress); it does nothing for stdout or after Close.
func (w *Writer) Reopen() error {
	if w == nil || w.path == "" {
		return nil
	}
	f, err := openFile(w.path)
	if err != nil {
		return err
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return f.Close()
	}
	old := w.file
	w.file, w.out = f, f
	w.mu.Unlock()
	return old.Close()
}

// Close writes every buffered line and closes the file (not stdout). Call it
// once the event loops have stopped: no Append or Tick may run during or
// after Close. A nil Writer's Close does nothing.
func (w *Writer) Close() error {
	if w == nil {
		return nil
	}
	var err error
	w.closeOnce.Do(func() {
		close(w.done)
		w.wg.Wait()
		for _, b := range w.bufs {
			w.drain(b) // older lines first
			if len(b.cur) > 0 {
				w.write(b.cur)
				b.cur = b.cur[:0]
			}
		}
		w.report(true)
		w.mu.Lock()
		w.closed = true
		if w.file != nil {
			err = w.file.Close()
		}
		w.mu.Unlock()
	})
	return err
}

// ring is a bounded single-producer single-consumer queue of byte slices:
// push only on one goroutine, pop only on one other.
type ring struct {
	slots [][]byte
	head  atomic.Uint64 // next slot to pop; written by the consumer
	tail  atomic.Uint64 // next slot to push; written by the producer
}

func (r *ring) push(b []byte) bool {
	t := r.tail.Load()
	if t-r.head.Load() == uint64(len(r.slots)) {
		return false
	}
	r.slots[t%uint64(len(r.slots))] = b
	r.tail.Store(t + 1)
	return true
}

func (r *ring) pop() ([]byte, bool) {
	h := r.head.Load()
	if h == r.tail.Load() {
		return nil, false
	}
	i := h % uint64(len(r.slots))
	b := r.slots[i]
	r.slots[i] = nil
	r.head.Store(h + 1)
	return b, true
}
