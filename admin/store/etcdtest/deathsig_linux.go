package etcdtest

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill etcd if the test process dies
// first, so a crashed test run leaves no stray etcd behind.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
