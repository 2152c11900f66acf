//go:build unix

package auth

import (
	"os"
	"syscall"
)

// ownerKeeper returns a function that gives a new file the owner of the file
// described by info, or nil when the owner is already the process's own (the
// usual case, and the only one an unprivileged process can produce).
func ownerKeeper(info os.FileInfo) func(string) error {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok || (int(st.Uid) == os.Geteuid() && int(st.Gid) == os.Getegid()) {
		return nil
	}
	uid, gid := int(st.Uid), int(st.Gid)
	return func(path string) error { return os.Chown(path, uid, gid) }
}
