package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const killHelperEnv = "SLUICE_STORE_KILL_HELPER_DIR"

func killValue(i int) string {
	return fmt.Sprintf(`{"id":"%d","uri":"/k/%d","pad":"%s"}`, i, i, strings.Repeat("p", i%200))
}

// TestKill9Helper is the child of TestEmbeddedKill9: it Puts keys forever,
// printing each index once its Put has returned, until it is killed.
func TestKill9Helper(t *testing.T) {
	dir := os.Getenv(killHelperEnv)
	if dir == "" {
		return // only runs as TestEmbeddedKill9's child
	}
	s, err := OpenEmbedded(dir, "", WithLogger(discardLogger()), withCompactMin(32<<10))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	start, _ := strconv.Atoi(os.Getenv(killHelperEnv + "_START"))
	for i := start; ; i++ {
		// Rewrite a few keys too, so compactions happen under the kill.
		if _, err := s.Put(context.Background(), "/apisix/routes/hot", []byte(killValue(i))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if _, err := s.Put(context.Background(), fmt.Sprintf("/apisix/routes/%d", i), []byte(killValue(i))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		// os.Stdout is unbuffered: the line is in the pipe when this returns.
		fmt.Fprintf(os.Stdout, "%d\n", i)
	}
}

func TestEmbeddedKill9(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	next := 0
	for round := range 3 {
		acked := runAndKill(t, dir, next, time.Duration(150+100*round)*time.Millisecond)
		require.NotEmpty(t, acked, "the helper acknowledged no write before the kill")

		s, err := OpenEmbedded(dir, "", WithLogger(discardLogger()))
		require.NoError(t, err, "reopen after kill -9")
		for _, i := range acked {
			kv, ok, err := s.Get(context.Background(), fmt.Sprintf("/apisix/routes/%d", i))
			require.NoError(t, err)
			require.True(t, ok, "round %d: key %d was acknowledged before the kill but is missing", round, i)
			assert.Equal(t, killValue(i), string(kv.Value))
		}
		last := acked[len(acked)-1]
		hot, ok, err := s.Get(context.Background(), "/apisix/routes/hot")
		require.NoError(t, err)
		require.True(t, ok)
		assert.Contains(t, []string{killValue(last), killValue(last + 1)}, string(hot.Value))
		require.NoError(t, s.Close())
		t.Logf("round %d: %d acknowledged writes survived kill -9", round, len(acked))
		next = last + 2
	}
}

// runAndKill runs the helper on dir, SIGKILLs it after d (and at least a
// few acknowledged writes), and returns the indexes it acknowledged.
func runAndKill(t *testing.T, dir string, start int, d time.Duration) []int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Helper$", "-test.count=1")
	cmd.Env = append(os.Environ(), killHelperEnv+"="+dir, killHelperEnv+"_START="+strconv.Itoa(start))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	lines := make(chan int, 1<<16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if i, err := strconv.Atoi(strings.TrimSpace(sc.Text())); err == nil {
				lines <- i
			}
		}
	}()
	var acked []int
	timer := time.After(d)
	deadline := time.After(30 * time.Second)
wait:
	for {
		select {
		case i, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("helper exited early: %s", stderr.String())
			}
			acked = append(acked, i)
		case <-timer:
			if len(acked) >= 5 {
				break wait
			}
			timer = time.After(20 * time.Millisecond)
		case <-deadline:
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("helper made no progress: %s", stderr.String())
		}
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	for i := range lines { // what it printed before it died
		acked = append(acked, i)
	}
	err = cmd.Wait()
	require.Error(t, err, "the helper was killed")
	for k, i := range acked {
		require.Equal(t, start+k, i)
	}
	return acked
}
