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
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/proctest"
)

// binary is etcd, from scripts/etcd.sh.
var binary = proctest.Binary{Env: "SLUICE_ETCD_BIN", Name: "etcd", What: "etcd server binary", Script: "scripts/etcd.sh", Debian: "etcd-server"}

// Binary returns the path of the etcd server binary: $SLUICE_ETCD_BIN,
// etcd on PATH, or /usr/bin/etcd.
func Binary() (string, error) { return binary.Path() }

// Server is one running (or stopped) etcd member.
type Server struct {
	tb      testing.TB
	bin     string
	dataDir string
	logPath string
	client  string // http://127.0.0.1:port
	peer    string
	proc    proctest.Proc
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
	cport, cerr := proctest.FreePort()
	pport, perr := proctest.FreePort()
	if err := errors.Join(cerr, perr); err != nil {
		t.Fatalf("etcdtest: free port: %v", err)
	}
	dir := t.TempDir()
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
func (s *Server) PID() int { return s.proc.PID() }

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
	if err := s.proc.Start(cmd, func() { logf.Close() }); err != nil {
		s.tb.Fatalf("etcdtest: start %s: %v", s.bin, err)
	}
	hc := &http.Client{Timeout: time.Second}
	switch err := s.proc.Wait(func() bool { return healthy(hc, s.client) }, 50*time.Millisecond, 30*time.Second); {
	case errors.Is(err, proctest.ErrNotReady):
		s.Stop()
		s.tb.Fatalf("etcdtest: etcd at %s not healthy after 30s; its log %s:\n%s", s.client, s.logPath, proctest.Tail(s.logPath))
	case err != nil:
		s.tb.Fatalf("etcdtest: etcd exited during start (%v); its log %s:\n%s", err, s.logPath, proctest.Tail(s.logPath))
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

// Stop stops etcd: SIGTERM, then SIGKILL after 10 s. Idempotent.
func (s *Server) Stop() { s.proc.Stop() }

// Kill stops etcd with SIGKILL at once (a crash).
func (s *Server) Kill() { s.proc.Kill() }

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
