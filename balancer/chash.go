package balancer

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// Ring sizing: PointsPerWeight virtual points per unit of weight (ketama's
// 160 per server), at most MaxRingPoints in all; past that the points are
// scaled down in proportion, each weighted node keeping at least one.
const (
	PointsPerWeight = 160
	MaxRingPoints   = 1 << 20
)

// buildRing places weight×PointsPerWeight points per node with weight > 0,
// each at xxhash("host:port#i"), sorted by hash (ties by node index) so the
// ring depends only on the node list. Builder goroutine only.
func buildRing(nodes []Node) []ringPoint {
	var sum int64
	for i := range nodes {
		if nodes[i].Weight > 0 {
			sum += int64(nodes[i].Weight)
		}
	}
	if sum == 0 {
		return nil
	}
	points := func(w int) int64 { return int64(w) * PointsPerWeight }
	total := sum * PointsPerWeight
	if total > MaxRingPoints {
		points = func(w int) int64 { return max(1, int64(w)*MaxRingPoints/sum) }
		total = MaxRingPoints + int64(len(nodes))
	}
	ring := make([]ringPoint, 0, total)
	var buf []byte
	for i := range nodes {
		n := &nodes[i]
		if n.Weight <= 0 {
			continue
		}
		buf = append(buf[:0], n.Host...)
		buf = append(buf, ':')
		buf = strconv.AppendInt(buf, int64(n.Port), 10)
		buf = append(buf, '#')
		base := len(buf)
		for p := range points(n.Weight) {
			buf = strconv.AppendInt(buf[:base], p, 10)
			ring = append(ring, ringPoint{hash: xxhash.Sum64(buf), node: int32(i)})
		}
	}
	slices.SortFunc(ring, func(a, b ringPoint) int {
		if c := cmp.Compare(a.hash, b.hash); c != 0 {
			return c
		}
		return cmp.Compare(a.node, b.node)
	})
	return ring
}

// search returns the index of the first point with hash >= h, wrapping to 0.
// It is sort.Search written out so it cannot allocate.
func search(ring []ringPoint, h uint64) int {
	lo, hi := 0, len(ring)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ring[m].hash < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(ring) {
		lo = 0
	}
	return lo
}

// pickHash walks the ring clockwise from hashKey's point to the first point
// whose node is a candidate in nodes [lo, hi).
func (u *Upstream) pickHash(hashKey []byte, lo, hi int, tried Tried, health bool, now int64) int {
	ring := u.ring
	if len(ring) == 0 {
		return -1
	}
	j := search(ring, xxhash.Sum64(hashKey))
	for range ring {
		if i := int(ring[j].node); i >= lo && i < hi && u.candidate(i, tried, health, now) {
			return i
		}
		if j++; j == len(ring) {
			j = 0
		}
	}
	return -1
}
