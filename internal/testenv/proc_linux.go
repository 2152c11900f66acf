package testenv

import "syscall"

// sysProcAttr makes the kernel kill a server when the test binary dies
// (a panic, a timeout, go test being interrupted), so no server outlives the
// test that started it even when t.Cleanup never runs.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
