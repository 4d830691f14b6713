package balancer

import (
	"strconv"
	"testing"
)

func benchUpstream(b *testing.B, k Kind) *Upstream {
	return build(b, nil, "bench", k, nodes("10.0.0.1", 5, "10.0.0.2", 3, "10.0.0.3", 1, "10.0.0.4", 1)...)
}

func BenchmarkPickSWRR(b *testing.B) {
	u := benchUpstream(b, RoundRobin)
	c := NewCursor(u)
	var hits [4]int
	b.ReportAllocs()
	for b.Loop() {
		i, _ := c.Pick(u, 0, nil, testNow)
		hits[i]++
	}
	if hits[0] < hits[1] || hits[1] < hits[2] {
		b.Fatalf("picks %v do not follow the weights 5:3:1:1", hits)
	}
}

// BenchmarkPickSWRRBaseline is STYLE §4's bare smooth WRR loop (no health,
// priority, tried set or address), the floor for BenchmarkPickSWRR.
func BenchmarkPickSWRRBaseline(b *testing.B) {
	u := benchUpstream(b, RoundRobin)
	current := make([]int, len(u.Nodes))
	var hits [4]int
	b.ReportAllocs()
	for b.Loop() {
		best, total := -1, 0
		for i := range u.Nodes {
			current[i] += u.Nodes[i].Weight
			total += u.Nodes[i].Weight
			if best < 0 || current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		hits[best]++
	}
	if hits[0] < hits[1] {
		b.Fatalf("picks %v", hits)
	}
}

func BenchmarkPickCHash(b *testing.B) {
	u := benchUpstream(b, CHash)
	c := NewCursor(u)
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = []byte("192.168.0." + strconv.Itoa(i))
	}
	var hits [4]int
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		i, _ := c.Pick(u, 0, keys[n&1023], testNow)
		hits[i]++
		n++
	}
	if n >= 1024 && (hits[0] == 0 || hits[3] == 0) {
		b.Fatalf("picks %v", hits)
	}
}

func BenchmarkPickLeastConn(b *testing.B) {
	u := benchUpstream(b, LeastConn)
	c := NewCursor(u)
	var hits [4]int
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		i, _ := c.Pick(u, 0, nil, testNow)
		c.Start(i)
		if n&3 == 3 { // keep a few requests in flight
			c.Done(i, 0, testNow)
		}
		hits[i]++
		n++
	}
	if n >= 4 && hits[0] == 0 {
		b.Fatalf("picks %v", hits)
	}
}

func BenchmarkPickEWMA(b *testing.B) {
	u := benchUpstream(b, EWMA)
	c := NewCursor(u)
	now := testNow
	b.ReportAllocs()
	for b.Loop() {
		i, _ := c.Pick(u, 0, nil, now)
		c.Start(i)
		now += 1000
		c.Done(i, int64(100000*(i+1)), now)
	}
}
