// Package redistest starts a real redis-server for tests: a private
// instance on a free 127.0.0.1 port, without persistence, stopped by PID
// when the test ends.
//
// The binary comes from scripts/redis.sh (Debian's redis-server). When it
// is missing, Start fails the test with a message saying so: the redis
// policy's tests never skip silently. Start, Stop and Restart must be
// called from the test goroutine.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/proctest"
)

// binary is redis-server, from scripts/redis.sh.
var binary = proctest.Binary{Env: "SLUICE_REDIS_BIN", Name: "redis-server", Script: "scripts/redis.sh", Debian: "redis-server"}

// Binary returns the path of redis-server: $SLUICE_REDIS_BIN,
// redis-server on PATH, or /usr/bin/redis-server.
func Binary() (string, error) { return binary.Path() }

// Server is one running (or stopped) redis-server.
type Server struct {
	tb      testing.TB
	bin     string
	dir     string
	logPath string
	port    int
	proc    proctest.Proc
}

// Start starts redis-server and returns it; t.Cleanup stops it.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	port, err := proctest.FreePort()
	if err != nil {
		t.Fatalf("redistest: free port: %v", err)
	}
	dir := t.TempDir()
	s := &Server{tb: t, bin: bin, dir: dir, logPath: filepath.Join(dir, "redis.log"), port: port}
	t.Cleanup(s.Stop)
	s.start()
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Host is the address redis-server listens on.
func (s *Server) Host() string { return "127.0.0.1" }

// Port is the TCP port.
func (s *Server) Port() int { return s.port }

// PID is the running process's id (0 when stopped).
func (s *Server) PID() int { return s.proc.PID() }

func (s *Server) start() {
	s.tb.Helper()
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--dir", s.dir,
		"--logfile", s.logPath,
	)
	if err := s.proc.Start(cmd, nil); err != nil {
		s.tb.Fatalf("redistest: start %s: %v", s.bin, err)
	}
	switch err := s.proc.Wait(func() bool { return s.Ping() == nil }, 20*time.Millisecond, 20*time.Second); {
	case errors.Is(err, proctest.ErrNotReady):
		s.Stop()
		s.tb.Fatalf("redistest: redis-server on %s not answering PING after 20s; its log %s:\n%s", s.Addr(), s.logPath, proctest.Tail(s.logPath))
	case err != nil:
		s.tb.Fatalf("redistest: redis-server exited during start (%v); its log %s:\n%s", err, s.logPath, proctest.Tail(s.logPath))
	}
}

// Ping sends PING on a new connection and expects +PONG.
func (s *Server) Ping() error {
	_, err := s.Do("PING")
	return err
}

// Do sends one command (inline form: arguments without spaces) on a new
// connection and returns the first line of the reply; an error reply is
// returned as an error.
func (s *Server) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(strings.Join(args, " ") + "\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "-") {
		return "", errors.New(line[1:])
	}
	return line, nil
}

// Stop stops redis-server: SIGTERM, then SIGKILL after 10 s. Idempotent.
func (s *Server) Stop() { s.proc.Stop() }

// Restart stops redis-server and starts it again on the same port (its
// data is gone: there is no persistence).
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	s.start()
}

// String describes the server.
func (s *Server) String() string {
	return fmt.Sprintf("redis-server %s (log %s)", s.Addr(), s.logPath)
}
