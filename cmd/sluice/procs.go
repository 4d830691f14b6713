package main

// spareProc returns the GOMAXPROCS to set so that the Go scheduler has one P
// more than there are event loops, or 0 to leave it as it is.
//
// An idle gnet loop blocks in epoll_wait, a system call, holding its P. When
// every P is held that way (GOMAXPROCS == loops, e.g. GOMAXPROCS=1 with one
// loop), sysmon retakes the P after 20 µs of every idle gap, starts a
// spinning M for it and keeps itself on its 20 µs tick; the loop then has to
// win a P back when epoll_wait returns. Profiled under the SSE benchmark
// (one loop, GOMAXPROCS=1): runtime.sysmon was 21% of sluice's CPU samples.
// With one spare P sysmon leaves a loop's P alone (it only retakes when no P
// is idle, or after 10 ms), and CPU per stream fell ~20% (README,
// Performance). The spare P runs the Admin API, deferred plugin steps and
// the access-log writer; the loops stay the only busy threads.
func spareProc(loops, gomaxprocs int) int {
	if gomaxprocs > loops {
		return 0
	}
	return loops + 1
}
