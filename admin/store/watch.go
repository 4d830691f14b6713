package store

import (
	"context"
	"sync"
)

// watcher is one Watch subscription. Producers (a writer of the embedded
// store, the etcd watch loop) push events without ever blocking; a
// goroutine hands them to the subscriber's channel in order. When the
// backlog passes the limit, it is dropped and replaced by a single
// EventResync (the subscriber reloads with List), and later events queue
// behind it as usual.
type watcher struct {
	out   chan Event
	limit int

	mu    sync.Mutex
	queue []Event
	wake  chan struct{} // capacity 1: "the queue is not empty"
}

// newWatcher makes a watcher; start begins delivery.
func newWatcher(limit int) *watcher {
	if limit <= 0 {
		limit = DefaultWatchQueue
	}
	w := &watcher{
		out:   make(chan Event),
		limit: limit,
		wake:  make(chan struct{}, 1),
	}
	return w
}

// start runs the delivery goroutine. It ends, closing out, when ctx ends
// or stop is closed; then it calls done (may be nil).
func (w *watcher) start(ctx context.Context, stop <-chan struct{}, done func()) {
	go w.run(ctx, stop, done)
}

// push queues ev; never blocks.
func (w *watcher) push(ev Event) {
	w.mu.Lock()
	if len(w.queue) >= w.limit {
		w.queue = append(w.queue[:0], Event{Type: EventResync})
	}
	if ev.Type != EventResync || len(w.queue) == 0 || w.queue[len(w.queue)-1].Type != EventResync {
		w.queue = append(w.queue, ev)
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *watcher) run(ctx context.Context, stop <-chan struct{}, done func()) {
	defer func() {
		close(w.out)
		if done != nil {
			done()
		}
	}()
	for {
		w.mu.Lock()
		if len(w.queue) == 0 {
			w.queue = nil // release the backing array
			w.mu.Unlock()
			select {
			case <-w.wake:
				continue
			case <-ctx.Done():
				return
			case <-stop:
				return
			}
		}
		ev := w.queue[0]
		w.queue[0] = Event{}
		w.queue = w.queue[1:]
		w.mu.Unlock()
		select {
		case w.out <- ev:
		case <-ctx.Done():
			return
		case <-stop:
			return
		}
	}
}
