package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// modulePath identifies the repository's go.mod when RepoRoot walks up.
const modulePath = "github.com/chargeguard/chargeguard"

// Integration skips the test under `go test -short` and does nothing
// otherwise. Every server constructor in this package calls it, so a test
// that starts a real server is an integration test without saying so; call
// it directly in integration tests that need no server from here.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
}

// RepoRoot returns the repository's root directory: the nearest directory
// above the working directory (go test runs in the package's directory)
// whose go.mod declares chargeguard's module.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return root
}

func repoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	// The source location works when the test runs from elsewhere (a binary
	// built with go test -c and run from another directory).
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for {
			mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err == nil && isOurModule(mod) {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("repository root (go.mod of %s) not found above %v", modulePath, starts)
}

func isOurModule(gomod []byte) bool {
	for _, line := range bytes.Split(gomod, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == modulePath {
			return true
		}
	}
	return false
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Another
// process may still take it before the caller binds it; the servers of this
// package retry with a new port when that happens.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return port
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Binary returns the path of the program name, trying candidates in order: an
// entry holding a slash is a file path, a bare name is looked up in PATH (and
// in /usr/sbin and /sbin, which a non-root PATH may lack). With no
// candidates, name itself is looked up. A missing program fails the test with
// a message saying that `make test` installs it: integration tests never skip
// for a missing server.
func Binary(t testing.TB, name string, candidates ...string) string {
	t.Helper()
	path, err := lookBinary(name, candidates...)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return path
}

// errNotInstalled marks a program that is not installed.
var errNotInstalled = errors.New("not installed")

func lookBinary(name string, candidates ...string) (string, error) {
	if len(candidates) == 0 {
		candidates = []string{name}
	}
	var tried []string
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if strings.ContainsRune(c, filepath.Separator) {
			tried = append(tried, c)
			if isExecutable(c) {
				return c, nil
			}
			continue
		}
		tried = append(tried, "$PATH/"+c)
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
		for _, dir := range []string{"/usr/sbin", "/sbin"} {
			if p := filepath.Join(dir, c); isExecutable(p) {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%s %w (looked for %s): run `make test`, it installs %s (or run scripts/install-deps.sh)",
		name, errNotInstalled, strings.Join(tried, ", "), name)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
