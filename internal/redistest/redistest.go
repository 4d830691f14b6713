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
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binary returns the path of redis-server: $SLUICE_REDIS_BIN,
// redis-server on PATH, or /usr/bin/redis-server.
func Binary() (string, error) {
	if p := os.Getenv("SLUICE_REDIS_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("SLUICE_REDIS_BIN=%s: %v (unset it and run scripts/redis.sh to install redis-server)", p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	if fi, err := os.Stat("/usr/bin/redis-server"); err == nil && !fi.IsDir() {
		return "/usr/bin/redis-server", nil
	}
	return "", errors.New("redis-server not found (not on PATH, not /usr/bin/redis-server): run scripts/redis.sh to install it (Debian's redis-server)")
}

// Server is one running (or stopped) redis-server.
type Server struct {
	tb      testing.TB
	bin     string
	dir     string
	logPath string
	port    int
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
}

// Start starts redis-server and returns it; t.Cleanup stops it.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	dir := t.TempDir()
	s := &Server{tb: t, bin: bin, dir: dir, logPath: filepath.Join(dir, "redis.log"), port: freePort(t)}
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
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

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
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("redistest: start %s: %v", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			s.tb.Fatalf("redistest: redis-server exited during start (%v); its log %s:\n%s", cmd.ProcessState, s.logPath, s.tail())
		default:
		}
		if err := s.Ping(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.Stop()
			s.tb.Fatalf("redistest: redis-server on %s not answering PING after 20s; its log %s:\n%s", s.Addr(), s.logPath, s.tail())
		}
		time.Sleep(20 * time.Millisecond)
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

func (s *Server) tail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Stop stops redis-server: SIGTERM, then SIGKILL after 10 s. Idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
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
