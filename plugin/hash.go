package plugin

import (
	"math/rand/v2"

	"github.com/cespare/xxhash/v2"
)

// HashSeed keys the hashes plugins take of client-controlled values
// (limit-count keys, api-breaker's host and path), per process, so that
// values colliding with someone else's cannot be precomputed.
var HashSeed = rand.Uint64()

// Hash is xxhash64 of b under HashSeed. It does not allocate.
func Hash(b []byte) uint64 {
	var d xxhash.Digest
	d.ResetWithSeed(HashSeed)
	d.Write(b)
	return d.Sum64()
}
