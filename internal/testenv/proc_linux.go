package testenv

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// sysProcAttr makes the kernel kill a server when the test binary dies
// (a panic, a timeout, go test being interrupted), so no server outlives the
// test that started it even when t.Cleanup never runs.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// Renice lowers the CPU priority of every thread of process pid to nice
// (Linux sets it per thread) until ctx is done, checking for new threads
// every 300 ms: what `Nice=` in a systemd unit or a lower `cpu_shares` does
// for a server that shares a machine with the ones that must not wait.
func Renice(ctx context.Context, pid, nice int) {
	for {
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		for _, t := range tasks {
			if tid, err := strconv.Atoi(t.Name()); err == nil {
				_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(300 * time.Millisecond):
		}
	}
}
