package proctest

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill cmd's process if the test process
// dies first, so a crashed test run leaves no stray server behind.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
