// Package store owns sluice's durable config store: the embedded file
// store (the default, one process) and the etcd store (a cluster of
// gateways sharing config), behind one interface with APISIX's key layout
// ("<prefix>/routes/<id>", prefix default "/apisix").
//
// Stores are safe for concurrent use. They run on admin goroutines, never
// on an event loop.
package store

import (
	"context"
	"errors"
)

// ErrUnavailable wraps a failure to reach the backing store (etcd down);
// the Admin API answers 503.
var ErrUnavailable = errors.New("store: unavailable")

// KV is one stored item.
type KV struct {
	Key      string // full key, e.g. "/apisix/routes/1"
	Value    []byte // JSON
	Revision int64  // store revision of the last change of this key
}

// EventType says what happened to a key.
type EventType uint8

const (
	EventPut EventType = iota + 1
	EventDelete
	// EventResync: changes were missed (etcd compaction, reconnect); the
	// watcher must reload everything with List. KV is empty.
	EventResync
)

// Event is one change, local or (etcd) from another gateway.
type Event struct {
	Type EventType
	KV   KV
}

// Store is a durable key-value store of APISIX resources.
type Store interface {
	// Prefix is the key prefix ("/apisix").
	Prefix() string
	// Get returns the item at key; ok is false when absent.
	Get(ctx context.Context, key string) (kv KV, ok bool, err error)
	// List returns every item whose key starts with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]KV, error)
	// Put stores value at key and returns whether it was created. The
	// write is durable (fsync'd, or acknowledged by an etcd quorum) when
	// Put returns nil.
	Put(ctx context.Context, key string, value []byte) (created bool, err error)
	// Delete removes key and reports whether it existed; durable on return.
	Delete(ctx context.Context, key string) (existed bool, err error)
	// Watch delivers every change after the store's current revision,
	// local writes included, in order, until ctx ends. After a gap the
	// store cannot replay (etcd compaction, reconnect), it sends a Resync
	// event and the caller reloads with List.
	Watch(ctx context.Context) <-chan Event
	// Close releases the store.
	Close() error
}
