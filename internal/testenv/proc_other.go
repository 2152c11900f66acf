//go:build !linux

package testenv

import (
	"context"
	"syscall"
)

// sysProcAttr has no parent-death signal outside Linux: there, a server can
// outlive a test binary that dies without running t.Cleanup.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// Renice does nothing outside Linux.
func Renice(ctx context.Context, pid, nice int) {}
