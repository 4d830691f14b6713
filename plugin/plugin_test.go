package plugin

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Set replaces what an earlier plugin added under the same name (any
// case); other lines stay, in order.
func TestSetRespHeader(t *testing.T) {
	var c Ctx
	c.AddRespHeaderInt([]byte("X-RateLimit-Limit"), 10)
	c.AddRespHeaderLines([]byte("X-Other: 1\r\n"))
	c.AddRespHeaderInt([]byte("x-ratelimit-remaining"), 9)
	c.SetRespHeaderInt([]byte("X-RateLimit-Limit"), 5)
	c.SetRespHeaderLines([]byte("X-RateLimit-Remaining: 4\r\nX-New: 2\r\n"))
	assert.Equal(t, "X-Other: 1\r\nX-RateLimit-Limit: 5\r\nX-RateLimit-Remaining: 4\r\nX-New: 2\r\n", string(c.RespHeaders()))
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		c.SetRespHeaderInt([]byte("X-RateLimit-Limit"), 7)
	}), "no allocation once grown")
}
