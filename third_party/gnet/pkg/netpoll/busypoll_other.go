// sluice: busy polling is implemented for the default Linux poller only.

//go:build (darwin || dragonfly || freebsd || netbsd || openbsd || linux) && !(linux && !poll_opt)

package netpoll

import "time"

// SetBusyPoll is a no-op on this poller: it always blocks at once.
func (p *Poller) SetBusyPoll(time.Duration) {}

// SetBusyPollGate is a no-op on this poller.
func (p *Poller) SetBusyPollGate(func() bool) {}
