package store

import (
	"errors"
	"log/slog"
)

// ErrClosed is returned by every call on a store after Close.
var ErrClosed = errors.New("store: closed")

// DefaultPrefix is APISIX's default key prefix.
const DefaultPrefix = "/apisix"

// DefaultWatchQueue is how many undelivered events a watcher may fall
// behind by before its backlog is dropped and replaced by one EventResync.
const DefaultWatchQueue = 4096

// Option tunes OpenEmbedded and OpenEtcd.
type Option func(*options)

type options struct {
	logger     *slog.Logger
	watchQueue int
	// compactMin is the log size below which the embedded store never
	// compacts (1 MiB); tests lower it.
	compactMin int64
}

// WithLogger sets where the store reports notable events (a torn record
// dropped at open, compaction failures, etcd watch resyncs). Default:
// slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithWatchQueue sets the per-watcher backlog limit (DefaultWatchQueue).
func WithWatchQueue(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.watchQueue = n
		}
	}
}

// withCompactMin lowers the embedded store's compaction floor (tests).
func withCompactMin(n int64) Option {
	return func(o *options) { o.compactMin = n }
}

func buildOptions(opts []Option) options {
	o := options{
		logger:     slog.Default(),
		watchQueue: DefaultWatchQueue,
		compactMin: 1 << 20,
	}
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return o
}

// normPrefix trims a trailing "/" and defaults to "/apisix".
func normPrefix(p string) string {
	for len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	if p == "" || p == "/" {
		return DefaultPrefix
	}
	return p
}
