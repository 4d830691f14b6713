// Package proctest runs a server binary for tests (redis-server, etcd):
// it finds the binary, picks free ports, starts the process, waits until
// it is ready and stops it by PID: SIGTERM, then SIGKILL after 10 s. On
// Linux the kernel kills the process if the test process dies first, so a
// crashed test run leaves no stray server behind. Packages
// internal/redistest and admin/store/etcdtest build on it.
//
// A Proc's methods may be called from any goroutine; the errors are for
// the caller to word (and to fail its test with).
package proctest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Binary says where a server binary comes from.
type Binary struct {
	Env    string // a variable naming the binary's path, e.g. "SLUICE_REDIS_BIN"
	Name   string // its file name, on PATH or in /usr/bin, e.g. "redis-server"
	What   string // what errors call it when not found; default Name
	Script string // the script that installs it, e.g. "scripts/redis.sh"
	Debian string // the Debian package that script installs, e.g. "redis-server"
}

// Path returns the path of the binary: $Env (which must exist), else Name
// on PATH, else /usr/bin/Name. The error says how to install it.
func (b Binary) Path() (string, error) {
	if p := os.Getenv(b.Env); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %v (unset it and run %s to install %s)", b.Env, p, err, b.Script, b.Name)
		}
		return p, nil
	}
	if p, err := exec.LookPath(b.Name); err == nil {
		return p, nil
	}
	usr := "/usr/bin/" + b.Name
	if fi, err := os.Stat(usr); err == nil && !fi.IsDir() {
		return usr, nil
	}
	what := b.What
	if what == "" {
		what = b.Name
	}
	return "", fmt.Errorf("%s not found (not on PATH, not %s): run %s to install it (Debian's %s)", what, usr, b.Script, b.Debian)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Proc is one server process; the zero Proc is stopped.
type Proc struct {
	mu     sync.Mutex
	cmd    *exec.Cmd     // nil when stopped
	exited chan struct{} // closed once cmd's process was reaped
}

// Start starts cmd (replacing its SysProcAttr). done, when not nil, runs
// once the process is gone, or at once if it could not start: to close
// the file cmd logs to.
func (p *Proc) Start(cmd *exec.Cmd, done func()) error {
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		if done != nil {
			done()
		}
		return err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		if done != nil {
			done()
		}
		close(exited)
	}()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	return nil
}

// ErrNotReady is Wait's error when the process was not ready in time.
var ErrNotReady = errors.New("proctest: not ready in time")

// Wait calls ready every poll until it reports true, for at most timeout.
// It returns ErrNotReady when timeout passed (the process keeps running),
// and an *exec.ExitError, whose text is the exit status, when the process
// exited first.
func (p *Proc) Wait(ready func() bool, poll, timeout time.Duration) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return errors.New("proctest: not started")
	}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-exited:
			return &exec.ExitError{ProcessState: cmd.ProcessState}
		default:
		}
		if ready() {
			return nil
		}
		if time.Now().After(deadline) {
			return ErrNotReady
		}
		time.Sleep(poll)
	}
}

// PID is the running process's id (0 when stopped).
func (p *Proc) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// take returns the process and marks p stopped.
func (p *Proc) take() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	return cmd, exited
}

// Stop stops the process: SIGTERM, then SIGKILL after 10 s; it returns once
// the process is reaped. Idempotent.
func (p *Proc) Stop() {
	cmd, exited := p.take()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return
	case <-time.After(10 * time.Second):
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Kill stops the process with SIGKILL at once (a crash) and returns once
// it is reaped. Idempotent.
func (p *Proc) Kill() {
	cmd, exited := p.take()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Tail returns the last 4000 bytes of the file at path (a server's log,
// for a failure message); "" when it cannot be read.
func Tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
