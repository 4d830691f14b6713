package redistest

import (
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStartStopRestart(t *testing.T) {
	s := Start(t)
	require.NoError(t, s.Ping())
	v, err := s.Do("INCR", "k")
	require.NoError(t, err)
	assert.Equal(t, ":1", v)
	pid := s.PID()
	require.NotZero(t, pid)

	s.Restart()
	require.NoError(t, s.Ping(), "answering again on the same port")
	assert.NotEqual(t, pid, s.PID())
	v, err = s.Do("GET", "k")
	require.NoError(t, err)
	assert.Equal(t, "$-1", v, "no persistence: the key is gone")

	pid = s.PID()
	s.Stop()
	assert.Zero(t, s.PID())
	assert.Error(t, s.Ping())
	// The process is gone (reaped), not just unresponsive.
	assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH)
	s.Stop() // idempotent
}

func TestMissingBinaryMessage(t *testing.T) {
	t.Setenv("SLUICE_REDIS_BIN", "/nonexistent/redis-server")
	_, err := Binary()
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "scripts/redis.sh"), err.Error())
}
