package proctest

import (
	"errors"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBinaryPath(t *testing.T) {
	b := Binary{Env: "PROCTEST_BIN", Name: "sh", Script: "scripts/x.sh", Debian: "dash"}
	p, err := b.Path()
	require.NoError(t, err)
	assert.Equal(t, "sh", filepath.Base(p))

	t.Setenv("PROCTEST_BIN", "/nonexistent/sh")
	_, err = b.Path()
	assert.EqualError(t, err, "PROCTEST_BIN=/nonexistent/sh: stat /nonexistent/sh: no such file or directory (unset it and run scripts/x.sh to install sh)")

	t.Setenv("PROCTEST_BIN", "")
	b.Name, b.What = "proctest-no-such-binary", "the x server"
	_, err = b.Path()
	assert.EqualError(t, err, "the x server not found (not on PATH, not /usr/bin/proctest-no-such-binary): run scripts/x.sh to install it (Debian's dash)")
}

func TestFreePort(t *testing.T) {
	p, err := FreePort()
	require.NoError(t, err)
	assert.Positive(t, p)
}

func TestStartWaitStop(t *testing.T) {
	var p Proc
	assert.Zero(t, p.PID())
	done := make(chan struct{})
	require.NoError(t, p.Start(exec.Command("sleep", "60"), func() { close(done) }))
	t.Cleanup(p.Kill)
	require.NoError(t, p.Wait(func() bool { return true }, time.Millisecond, time.Second))
	pid := p.PID()
	require.NotZero(t, pid)

	assert.ErrorIs(t, p.Wait(func() bool { return false }, time.Millisecond, 10*time.Millisecond), ErrNotReady)

	p.Stop()
	assert.Zero(t, p.PID())
	<-done // ran once the process was reaped
	assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH)
	p.Stop() // idempotent
	p.Kill()
}

func TestWaitExited(t *testing.T) {
	var p Proc
	require.NoError(t, p.Start(exec.Command("sh", "-c", "exit 3"), nil))
	t.Cleanup(p.Stop)
	err := p.Wait(func() bool { return false }, time.Millisecond, 10*time.Second)
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "%v", err)
	assert.EqualError(t, err, "exit status 3")
}

func TestKill(t *testing.T) {
	var p Proc
	require.NoError(t, p.Start(exec.Command("sleep", "60"), nil))
	pid := p.PID()
	p.Kill()
	assert.Zero(t, p.PID())
	assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH)
}

func TestStartFails(t *testing.T) {
	var p Proc
	ran := false
	assert.Error(t, p.Start(exec.Command("/nonexistent/proctest"), func() { ran = true }))
	assert.True(t, ran, "done runs when the process cannot start")
	assert.Zero(t, p.PID())
}
