package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Embedded is the default store: one directory, one process. Every item
// lives in memory for reads; every change is appended to dir/store.log
// and fsync'd before Put or Delete returns, so a kill -9 or power loss
// right after a return loses nothing. See wal.go for the file format.
//
// The directory is locked (flock on dir/LOCK) against a second sluice.
type Embedded struct {
	dir     string
	path    string // dir/store.log
	prefix  string
	opt     options
	log     *slog.Logger
	release func() error // the directory lock

	// wmu serialises writers: append, fsync, compaction. A writer then
	// takes mu to publish, so readers never wait for a disk flush.
	wmu       sync.Mutex
	f         *os.File // the log, open for appending
	size      int64    // bytes in the log
	live      int64    // bytes the live items would take in a snapshot
	nextCheck int64    // log size that triggers a compaction (after a failure)
	failed    error    // sticky: the log is in an unknown state
	buf       []byte

	mu       sync.RWMutex
	closed   bool
	rev      int64
	items    map[string]*item
	watchers map[*watcher]struct{}
	stop     chan struct{} // closed by Close: ends every watcher
}

type item struct {
	value []byte
	rev   int64
	size  int64 // the record's size in a snapshot
}

var _ Store = (*Embedded)(nil)

const (
	logName = "store.log"
	tmpName = "store.log.tmp"
)

// OpenEmbedded opens (creating it when needed, mode 0700) the store in
// dir, with key prefix prefix (default "/apisix"). It fails if another
// process holds the directory, or if the log is corrupt anywhere but in a
// torn final record, which a crash during a write leaves and which is cut
// off (that write had not returned).
func OpenEmbedded(dir string, prefix string, opts ...Option) (*Embedded, error) {
	if dir == "" {
		dir = "./data"
	}
	o := buildOptions(opts)
	if err := mkdirDurable(dir); err != nil {
		return nil, err
	}
	release, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Embedded{
		dir:      dir,
		path:     filepath.Join(dir, logName),
		prefix:   normPrefix(prefix),
		opt:      o,
		log:      o.logger,
		release:  release,
		items:    make(map[string]*item),
		watchers: make(map[*watcher]struct{}),
		stop:     make(chan struct{}),
	}
	if err := s.load(); err != nil {
		if s.f != nil {
			s.f.Close()
		}
		release()
		return nil, err
	}
	return s, nil
}

// mkdirDurable creates dir (0700) and, when it made it, fsyncs the parent
// so the directory entry itself survives a crash.
func mkdirDurable(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("store: %s is not a directory", dir)
		}
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store: create %s: %w", dir, err)
	}
	if err := syncDir(filepath.Dir(filepath.Clean(dir))); err != nil {
		return fmt.Errorf("store: create %s: %w", dir, err)
	}
	return nil
}

// syncDir fsyncs a directory (a variable for tests).
var syncDir = syncDirOS

func syncDirOS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// load replays the log (creating an empty one on first use), cuts off a
// torn final record, and opens the log for appending.
func (s *Embedded) load() error {
	// A snapshot that never got renamed into place: the log is complete
	// without it.
	if err := os.Remove(filepath.Join(s.dir, tmpName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("store: remove stale %s: %w", tmpName, err)
	}
	data, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(data) == 0) {
		// First start (a zero-length file holds nothing either: the log is
		// only ever created complete, by rename).
		if err := s.writeSnapshot(); err != nil {
			return err
		}
		if data, err = os.ReadFile(s.path); err != nil {
			return fmt.Errorf("store: read %s: %w", s.path, err)
		}
	} else if err != nil {
		return fmt.Errorf("store: read %s: %w", s.path, err)
	}

	end, torn, err := scanLog(s.path, data, func(off int64, op *logOp) error {
		if op.Rev > s.rev {
			s.rev = op.Rev
		}
		switch op.Op {
		case "put":
			v := op.value()
			s.setItem(op.Key, v, op.Rev)
		case "del":
			s.deleteItem(op.Key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("store: open %s: %w", s.path, err)
	}
	s.f = f
	if torn {
		// keep what is cut off beside the log: it is an unacknowledged
		// write in every case we know, but nothing is destroyed on a guess
		aside := fmt.Sprintf("%s.torn-%d", s.path, end)
		if err := os.WriteFile(aside, data[end:], 0o600); err != nil {
			return fmt.Errorf("store: keep the torn tail of %s aside: %w", s.path, err)
		}
		s.log.Warn("store: dropped an incomplete record at the end of the log (a crash during a write that had not returned); its bytes are kept aside",
			"file", s.path, "offset", end, "bytes", int64(len(data))-end, "kept", aside)
		if err := f.Truncate(end); err != nil {
			return fmt.Errorf("store: truncate torn record in %s at offset %d: %w", s.path, end, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("store: sync %s: %w", s.path, err)
		}
	}
	s.size = end
	s.nextCheck = 0
	return nil
}

func (s *Embedded) setItem(key string, value []byte, rev int64) {
	size := int64(len(appendRecord(nil, "put", rev, key, value)))
	if old, ok := s.items[key]; ok {
		s.live -= old.size
	}
	s.items[key] = &item{value: value, rev: rev, size: size}
	s.live += size
}

func (s *Embedded) deleteItem(key string) {
	if old, ok := s.items[key]; ok {
		s.live -= old.size
		delete(s.items, key)
	}
}

// Prefix returns the key prefix.
func (s *Embedded) Prefix() string { return s.prefix }

// Dir returns the store's directory.
func (s *Embedded) Dir() string { return s.dir }

// Revision returns the revision of the last change (0 for a new store).
func (s *Embedded) Revision() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev
}

// Get returns the item at key.
func (s *Embedded) Get(ctx context.Context, key string) (KV, bool, error) {
	if err := ctx.Err(); err != nil {
		return KV{}, false, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return KV{}, false, ErrClosed
	}
	it, ok := s.items[key]
	if !ok {
		return KV{}, false, nil
	}
	return KV{Key: key, Value: clone(it.value), Revision: it.rev}, true, nil
}

// List returns the items whose key starts with prefix, sorted by key.
func (s *Embedded) List(ctx context.Context, prefix string) ([]KV, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	out := make([]KV, 0)
	for k, it := range s.items {
		if strings.HasPrefix(k, prefix) {
			out = append(out, KV{Key: k, Value: clone(it.value), Revision: it.rev})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Put stores value at key; it returns once the change is on disk.
func (s *Embedded) Put(ctx context.Context, key string, value []byte) (bool, error) {
	if key == "" {
		return false, errors.New("store: empty key")
	}
	created, _, err := s.write(ctx, "put", key, clone(value))
	return created, err
}

// Delete removes key; it returns once the change is on disk. Deleting a
// missing key writes nothing.
func (s *Embedded) Delete(ctx context.Context, key string) (bool, error) {
	_, existed, err := s.write(ctx, "del", key, nil)
	return existed, err
}

func (s *Embedded) write(ctx context.Context, op, key string, value []byte) (created, existed bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, false, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()

	s.mu.RLock()
	closed := s.closed
	_, existed = s.items[key]
	rev := s.rev + 1
	s.mu.RUnlock()
	if closed {
		return false, false, ErrClosed
	}
	if s.failed != nil {
		return false, false, s.failed
	}
	if op == "del" && !existed {
		return false, false, nil
	}

	s.buf = appendRecord(s.buf[:0], op, rev, key, value)
	if err := s.appendDurable(s.buf); err != nil {
		return false, false, err
	}

	// On disk: publish.
	s.mu.Lock()
	s.rev = rev
	var ev Event
	if op == "put" {
		s.setItem(key, value, rev)
		ev = Event{Type: EventPut, KV: KV{Key: key, Value: clone(value), Revision: rev}}
	} else {
		s.deleteItem(key)
		ev = Event{Type: EventDelete, KV: KV{Key: key, Revision: rev}}
	}
	for w := range s.watchers {
		w.push(ev)
	}
	s.mu.Unlock()

	s.maybeCompact()
	return op == "put" && !existed, existed, nil
}

// appendDurable writes rec at the end of the log and fsyncs. On failure it
// cuts the log back to where it was, so a partial record can never end up
// in the middle of the file; if even that fails, the store stops taking
// writes (a restart replays what is on disk).
func (s *Embedded) appendDurable(rec []byte) error {
	_, werr := s.f.Write(rec)
	if werr == nil {
		if err := s.f.Sync(); err != nil {
			// After a failed fsync the page cache cannot be trusted to
			// hold what we wrote: stop writing.
			s.failed = fmt.Errorf("%w: fsync %s failed, writes are disabled until restart: %w", ErrUnavailable, s.path, err)
			s.log.Error("store: fsync failed; refusing further writes", "file", s.path, "err", err)
			return s.failed
		}
		s.size += int64(len(rec))
		return nil
	}
	err := fmt.Errorf("%w: write %s: %w", ErrUnavailable, s.path, werr)
	if terr := s.f.Truncate(s.size); terr != nil {
		s.failed = fmt.Errorf("%w: write %s failed and the log could not be cut back, writes are disabled until restart: %w", ErrUnavailable, s.path, werr)
		s.log.Error("store: cannot cut a failed write back; refusing further writes", "file", s.path, "err", terr)
		return s.failed
	}
	if serr := s.f.Sync(); serr != nil {
		s.failed = fmt.Errorf("%w: fsync %s failed, writes are disabled until restart: %w", ErrUnavailable, s.path, serr)
		return s.failed
	}
	return err
}

// maybeCompact rewrites the log as a snapshot once it has grown past
// max(1 MiB, 4× the live data). Called with wmu held. A failure is
// logged; the log stays valid and the next try waits until it doubles.
func (s *Embedded) maybeCompact() {
	limit := max(s.opt.compactMin, 4*s.live, s.nextCheck)
	if s.size <= limit {
		return
	}
	if err := s.compact(); err != nil {
		s.nextCheck = 2 * s.size
		s.log.Error("store: compaction failed; the log stays as it is", "file", s.path, "err", err)
		return
	}
	s.nextCheck = 0
}

// compact writes a snapshot and swaps it in for the log. wmu held.
func (s *Embedded) compact() error {
	if s.failed != nil {
		return s.failed
	}
	before := s.size
	werr := s.writeSnapshot()
	if werr != nil && !errors.Is(werr, errDirSync) {
		return werr
	}
	// The rename is done: the snapshot is the log now, and s.f points at
	// the old, unlinked inode. Switch — also when the directory fsync
	// failed, or later writes would go to a file nobody reads again.
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.failed = fmt.Errorf("%w: reopen %s after compaction: %w", ErrUnavailable, s.path, err)
		return s.failed
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		s.failed = fmt.Errorf("%w: stat %s after compaction: %w", ErrUnavailable, s.path, err)
		return s.failed
	}
	s.f.Close()
	s.f = f
	s.size = fi.Size()
	s.log.Debug("store: compacted the log", "file", s.path, "before", before, "after", s.size)
	return werr
}

// errDirSync marks a snapshot that was renamed over the log but whose
// directory fsync failed.
var errDirSync = errors.New("sync directory")

// writeSnapshot writes every live item (and the revision) to a temporary
// file, fsyncs it, renames it over the log and fsyncs the directory.
// wmu held (or during open).
func (s *Embedded) writeSnapshot() error {
	s.mu.RLock()
	keys := make([]string, 0, len(s.items))
	for k := range s.items {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	buf := make([]byte, 0, s.live+64)
	buf = append(buf, logMagic...)
	buf = appendRecord(buf, "rev", s.rev, "", nil)
	for _, k := range keys {
		it := s.items[k]
		buf = appendRecord(buf, "put", it.rev, k, it.value)
	}
	s.mu.RUnlock()

	tmp := filepath.Join(s.dir, tmpName)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("store: snapshot: %w", err)
	}
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store: snapshot %s: %w", tmp, err)
	}
	if err := syncDir(s.dir); err != nil {
		// The rename happened; whether it survives a crash is unknown,
		// but either file holds every acknowledged write.
		return fmt.Errorf("store: snapshot: %w %s: %w", errDirSync, s.dir, err)
	}
	return nil
}

// Compact forces a compaction now (normally automatic).
func (s *Embedded) Compact() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	return s.compact()
}

// Watch delivers every change made after the call, in order, until ctx
// ends or the store is closed (the channel is then closed). A watcher that
// falls more than the watch queue behind gets one EventResync in place of
// its backlog; writers never wait for watchers.
func (s *Embedded) Watch(ctx context.Context) <-chan Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		ch := make(chan Event)
		close(ch)
		return ch
	}
	w := newWatcher(s.opt.watchQueue)
	s.watchers[w] = struct{}{}
	w.start(ctx, s.stop, func() {
		s.mu.Lock()
		delete(s.watchers, w)
		s.mu.Unlock()
	})
	return w.out
}

// Close flushes nothing (every write is already on disk), ends the
// watchers, closes the log and releases the directory lock.
func (s *Embedded) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	s.mu.Unlock()
	err := s.f.Close()
	if rerr := s.release(); err == nil {
		err = rerr
	}
	return err
}

func clone(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return append(make([]byte, 0, len(b)), b...)
}
