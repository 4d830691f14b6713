//go:build !linux

package proctest

import "os/exec"

func setDeathSignal(cmd *exec.Cmd) {}
