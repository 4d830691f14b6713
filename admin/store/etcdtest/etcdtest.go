// Package etcdtest starts a real etcd server for tests: a private member on
// 127.0.0.1 with free ports and a temporary data directory, stopped by PID
// when the test ends.
//
// The etcd binary comes from scripts/etcd.sh (Debian's etcd-server). When
// it is missing, Start fails the test with a message saying so: the etcd
// store's tests never skip silently.
package etcdtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
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

// Binary returns the path of the etcd server binary: $SLUICE_ETCD_BIN,
// etcd on PATH, or /usr/bin/etcd.
func Binary() (string, error) {
	if p := os.Getenv("SLUICE_ETCD_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("SLUICE_ETCD_BIN=%s: %v (unset it and run scripts/etcd.sh to install etcd)", p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("etcd"); err == nil {
		return p, nil
	}
	if fi, err := os.Stat("/usr/bin/etcd"); err == nil && !fi.IsDir() {
		return "/usr/bin/etcd", nil
	}
	return "", errors.New("etcd server binary not found (not on PATH, not /usr/bin/etcd): run scripts/etcd.sh to install it (Debian's etcd-server)")
}

// Server is one running (or stopped) etcd member.
type Server struct {
	tb      testing.TB
	bin     string
	dataDir string
	logPath string
	client  string // http://127.0.0.1:port
	peer    string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
}

// Start starts etcd and returns its client URL, stop (idempotent; also run
// by t.Cleanup) and restart (stop, then start the same member again: same
// ports, same data directory — for outage tests). Start, stop and restart
// fail the test on error; call them from the test goroutine.
func Start(t testing.TB) (endpoint string, stop func(), restart func()) {
	t.Helper()
	s := StartServer(t)
	return s.Endpoint(), s.Stop, s.Restart
}

// StartServer is Start returning the Server.
func StartServer(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	dir := t.TempDir()
	cport, pport := freePort(t), freePort(t)
	s := &Server{
		tb:      t,
		bin:     bin,
		dataDir: filepath.Join(dir, "data"),
		logPath: filepath.Join(dir, "etcd.log"),
		client:  "http://127.0.0.1:" + strconv.Itoa(cport),
		peer:    "http://127.0.0.1:" + strconv.Itoa(pport),
	}
	t.Cleanup(s.Stop)
	s.start()
	return s
}

// Endpoint is the client URL.
func (s *Server) Endpoint() string { return s.client }

// DataDir is the member's data directory.
func (s *Server) DataDir() string { return s.dataDir }

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
		t.Fatalf("etcdtest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *Server) start() {
	s.tb.Helper()
	logf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		s.tb.Fatalf("etcdtest: %v", err)
	}
	cmd := exec.Command(s.bin,
		"--name", "default",
		"--data-dir", s.dataDir,
		"--listen-client-urls", s.client,
		"--advertise-client-urls", s.client,
		"--listen-peer-urls", s.peer,
		"--initial-advertise-peer-urls", s.peer,
		"--initial-cluster", "default="+s.peer,
		"--initial-cluster-state", "new",
		"--initial-cluster-token", "sluice-etcdtest",
		"--logger", "zap",
		"--log-outputs", "stderr",
		"--log-level", "warn",
	)
	cmd.Stdout = logf
	cmd.Stderr = logf
	// etcd reads ETCD_* variables as flags: keep only the flags above
	// (ETCD_UNSUPPORTED_ARCH, needed on some platforms, passes through).
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") || strings.HasPrefix(kv, "ETCD_UNSUPPORTED_ARCH=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		s.tb.Fatalf("etcdtest: start %s: %v", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	hc := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-exited:
			s.tb.Fatalf("etcdtest: etcd exited during start (%v); its log %s:\n%s", cmd.ProcessState, s.logPath, s.tail())
		default:
		}
		if healthy(hc, s.client) {
			return
		}
		if time.Now().After(deadline) {
			s.Stop()
			s.tb.Fatalf("etcdtest: etcd at %s not healthy after 30s; its log %s:\n%s", s.client, s.logPath, s.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func healthy(hc *http.Client, base string) bool {
	resp, err := hc.Get(base + "/health")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode == http.StatusOK && bytes.Contains(b.Bytes(), []byte(`"true"`))
}

func (s *Server) tail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Stop stops etcd: SIGTERM, then SIGKILL after 10 s. Idempotent.
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

// Kill stops etcd with SIGKILL at once (a crash).
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Restart stops etcd and starts the same member again (same ports, same
// data directory) and waits until it is healthy.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	s.start()
}

// String describes the member.
func (s *Server) String() string {
	return fmt.Sprintf("etcd %s (data %s, log %s)", s.client, s.dataDir, s.logPath)
}
