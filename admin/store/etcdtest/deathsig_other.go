//go:build !linux

package etcdtest

import "os/exec"

func setDeathSignal(cmd *exec.Cmd) {}
