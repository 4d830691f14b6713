package standalone

import (
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/model"
)

// DefaultInterval is how often a Watcher polls when NewWatcher is given no
// interval. APISIX checks the file's mtime every second too
// (core/config_yaml.lua read_apisix_config).
const DefaultInterval = time.Second

// Watcher loads an apisix.yaml file and keeps loading it when it changes.
//
// It polls instead of using inotify (fsnotify): polling needs no new
// dependency, works the same on every OS and file system (including
// network and container overlay mounts where inotify events are missing),
// and sees the ways files really get replaced (an editor's write-and-
// rename, a Kubernetes ConfigMap's symlink swap), which a watch on the
// file itself misses once the inode it watched is gone. Reading and
// hashing one small file once a second costs nothing measurable.
//
// A change is any difference in size, mtime or SHA-256 of the content: the
// hash catches an edit that keeps the size within the mtime's granularity
// (one second on some file systems). Each changed file is parsed (Parse)
// and handed to apply; a file that fails to parse, or that apply refuses,
// is logged with logf and otherwise ignored, so the last good table stays
// in service. A failed file is not retried until it changes again or
// Reload is called.
type Watcher struct {
	path     string
	interval time.Duration
	apply    func(*model.Snapshot) error
	logf     func(format string, args ...any)

	mu      sync.Mutex // held while loading: Start, Reload and the poller take turns
	seen    stamp      // the file content last parsed, applied or not
	readErr string     // the last read error logged, so each is logged once

	started  atomic.Bool
	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// stamp identifies one version of the file.
type stamp struct {
	size  int64
	mtime int64 // UnixNano
	sum   [sha256.Size]byte
}

// NewWatcher returns a Watcher for the file at path. interval ≤ 0 means
// DefaultInterval. apply receives each new snapshot and must not be nil;
// it runs router.Build and publishes, and its error means "not applied".
// logf reports files that were not applied; nil means log.Printf. Nothing
// happens until Start.
func NewWatcher(path string, interval time.Duration, apply func(*model.Snapshot) error, logf func(format string, args ...any)) *Watcher {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if logf == nil {
		logf = log.Printf
	}
	return &Watcher{
		path:     path,
		interval: interval,
		apply:    apply,
		logf:     logf,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// Start loads the file once, on the calling goroutine, and returns the
// error of that load (unreadable, Parse or apply), so that start-up fails
// on a bad file; the poller is then not started. On success it starts the
// poller goroutine. Call it once.
func (w *Watcher) Start() error {
	w.mu.Lock()
	err := w.load()
	w.mu.Unlock()
	if err != nil {
		return err
	}
	w.started.Store(true)
	go w.run()
	return nil
}

// Reload reads, parses and applies the file now, even if it did not change
// (SIGHUP; also a retry after apply failed, e.g. on a DNS error). A failure
// is logged with logf, as the poller logs it, and returned; the last good
// table stays. It may be called from any goroutine, also after Stop.
func (w *Watcher) Reload() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.load(); err != nil {
		w.logf("standalone: %s: reload failed, keeping the previous configuration: %v", w.path, err)
		return err
	}
	return nil
}

// Stop stops the poller and waits for it to return; apply is not called
// after Stop returns (unless by Reload). It may be called more than once,
// and without Start.
func (w *Watcher) Stop() {
	w.stopOnce.Do(func() { close(w.stop) })
	if w.started.Load() {
		<-w.done
	}
}

func (w *Watcher) run() {
	defer close(w.done)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.poll()
		}
	}
}

// poll loads the file if it changed since it was last parsed.
func (w *Watcher) poll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	data, st, err := w.read()
	if err != nil {
		// A file briefly missing while it is replaced is normal: log each
		// distinct error once, not every interval.
		if msg := err.Error(); msg != w.readErr {
			w.readErr = msg
			w.logf("standalone: %v; keeping the previous configuration", err)
		}
		return
	}
	w.readErr = ""
	if st == w.seen {
		return
	}
	if err := w.use(data, st); err != nil {
		w.logf("standalone: %s changed but was not applied, keeping the previous configuration: %v", w.path, err)
	}
}

// load reads, parses and applies the file unconditionally. w.mu is held.
func (w *Watcher) load() error {
	data, st, err := w.read()
	if err != nil {
		return fmt.Errorf("standalone: %w", err)
	}
	w.readErr = ""
	return w.use(data, st)
}

// use parses data and applies it, and records st as seen either way, so a
// bad file is reported once. w.mu is held.
func (w *Watcher) use(data []byte, st stamp) error {
	w.seen = st
	snap, err := Parse(data)
	if err != nil {
		return err
	}
	return w.apply(snap)
}

// read returns the file's content and stamp. The stamp's sum is of the
// bytes returned, so a write racing with the read is seen at the next poll.
func (w *Watcher) read() ([]byte, stamp, error) {
	f, err := os.Open(w.path)
	if err != nil {
		return nil, stamp{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, stamp{}, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, stamp{}, err
	}
	return data, stamp{size: fi.Size(), mtime: fi.ModTime().UnixNano(), sum: sha256.Sum256(data)}, nil
}
