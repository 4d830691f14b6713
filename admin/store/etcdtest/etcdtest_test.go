package etcdtest

import (
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStartStopRestart(t *testing.T) {
	s := StartServer(t)
	hc := &http.Client{Timeout: time.Second}
	require.True(t, healthy(hc, s.Endpoint()))
	pid := s.PID()
	require.NotZero(t, pid)

	s.Restart()
	assert.True(t, healthy(hc, s.Endpoint()), "healthy again on the same port")
	assert.NotEqual(t, pid, s.PID())
	_, err := os.Stat(s.DataDir())
	require.NoError(t, err)

	pid = s.PID()
	s.Stop()
	assert.Zero(t, s.PID())
	assert.False(t, healthy(hc, s.Endpoint()))
	// The process is gone (reaped), not just unresponsive.
	assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH)
	s.Stop() // idempotent
}

func TestMissingBinaryMessage(t *testing.T) {
	t.Setenv("SLUICE_ETCD_BIN", "/nonexistent/etcd")
	_, err := Binary()
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "scripts/etcd.sh"), err.Error())
}
