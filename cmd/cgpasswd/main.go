// Command cgpasswd manages the MQTT password file that Mosquitto and
// chargeguard's embedded broker share: it adds a pile's credentials (the
// username is the pile's "site/pile"), replaces or deletes them, and lists
// the accounts. It writes Mosquitto 2.0's own format (PBKDF2-SHA512, as
// mosquitto_passwd does), so either tool may edit the file.
//
//	cgpasswd -f passwd add chunbo-nanyuan/p01          # prints a new random password
//	cgpasswd -f passwd add -stdin chargeguard < pw.txt  # the password from stdin
//	cgpasswd -f passwd delete chunbo-nanyuan/p01
//	cgpasswd -f passwd list
//	cgpasswd -f passwd check chunbo-nanyuan/p01 < pw.txt  # exit 0 if it matches
//
// The broker re-reads the file: Mosquitto on SIGHUP, the embedded broker by
// itself within a second.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/chargeguard/chargeguard/broker/auth"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// Exit codes.
const (
	exitOK       = 0
	exitMismatch = 1 // check: wrong password or unknown user
	exitError    = 2
)

const usage = `Usage: cgpasswd -f FILE [-owner UID:GID] [-mode MODE] COMMAND [ARGS]

Manages a Mosquitto password file (shared by Mosquitto and chargeguard's
embedded broker). Usernames are "site/pile" for a pile, or one id for an
account such as chargeguard; ids match [A-Za-z0-9_-]{1,64}.

Commands:
  add [-stdin | -password-env VAR] [-iterations N] USERNAME
        add USERNAME, or give it a new password. Without -stdin or
        -password-env a random password is generated and printed alone on
        stdout: put it in the pile's configuration.
  delete USERNAME
        remove USERNAME.
  list
        print the usernames, one per line.
  check USERNAME
        read a password from stdin; exit 0 if it is USERNAME's, 1 if not.

Global flags:
`

func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("cgpasswd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "", "the password file (created by add if missing)")
	owner := fs.String("owner", "", "UID:GID to give the file after writing it (Mosquitto reads it as its own user, uid 1883 in the eclipse-mosquitto image)")
	mode := fs.String("mode", "0640", "permissions of a new file; an existing file keeps its own")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitError
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "cgpasswd: "+format+"\n", a...)
		return exitError
	}
	if *file == "" {
		fs.Usage()
		return fail("-f FILE is required")
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fail("no command")
	}
	perm, err := strconv.ParseUint(*mode, 8, 32)
	if err != nil || perm > 0o777 {
		return fail("-mode %q: want octal permissions such as 0640", *mode)
	}
	uid, gid := -1, -1
	if *owner != "" {
		u, g, ok := strings.Cut(*owner, ":")
		var err1, err2 error
		uid, err1 = strconv.Atoi(u)
		gid, err2 = strconv.Atoi(g)
		if !ok || err1 != nil || err2 != nil || uid < 0 || gid < 0 {
			return fail("-owner %q: want numeric UID:GID", *owner)
		}
	}
	w := writer{path: *file, perm: os.FileMode(perm), uid: uid, gid: gid}

	cmd, rest := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "add":
		return add(rest, w, stdin, stdout, stderr, getenv)
	case "delete", "del", "rm":
		if len(rest) != 1 {
			return fail("usage: cgpasswd -f FILE delete USERNAME")
		}
		f, err := load(*file, false)
		if err != nil {
			return fail("%v", err)
		}
		if !f.Delete(rest[0]) {
			return fail("%s: no user %q", *file, rest[0])
		}
		if err := w.write(f); err != nil {
			return fail("%v", err)
		}
		fmt.Fprintf(stderr, "cgpasswd: deleted %s from %s; reload the broker (Mosquitto: SIGHUP)\n", rest[0], *file)
		return exitOK
	case "list":
		if len(rest) != 0 {
			return fail("usage: cgpasswd -f FILE list")
		}
		f, err := load(*file, false)
		if err != nil {
			return fail("%v", err)
		}
		for _, u := range f.Users() {
			fmt.Fprintln(stdout, u)
		}
		return exitOK
	case "check":
		if len(rest) != 1 {
			return fail("usage: cgpasswd -f FILE check USERNAME < password")
		}
		f, err := load(*file, false)
		if err != nil {
			return fail("%v", err)
		}
		pw, err := readPassword(stdin)
		if err != nil {
			return fail("%v", err)
		}
		if !f.Verify(rest[0], pw) {
			fmt.Fprintf(stderr, "cgpasswd: %s: wrong password or unknown user\n", rest[0])
			return exitMismatch
		}
		return exitOK
	default:
		fs.Usage()
		return fail("unknown command %q", cmd)
	}
}

func add(args []string, w writer, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("cgpasswd add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fromStdin := fs.Bool("stdin", false, "read the password from the first line of stdin")
	fromEnv := fs.String("password-env", "", "take the password from this environment variable")
	iterations := fs.Int("iterations", auth.DefaultIterations, "PBKDF2 iterations (mosquitto_passwd uses 101)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitError
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "cgpasswd: "+format+"\n", a...)
		return exitError
	}
	if fs.NArg() != 1 {
		return fail("usage: cgpasswd -f FILE add [-stdin | -password-env VAR] [-iterations N] USERNAME")
	}
	user := fs.Arg(0)
	if err := auth.ValidUsername(user); err != nil {
		return fail("%v", err)
	}
	if *fromStdin && *fromEnv != "" {
		return fail("-stdin and -password-env exclude each other")
	}
	var (
		pw        string
		generated bool
		err       error
	)
	switch {
	case *fromStdin:
		if pw, err = readPassword(stdin); err != nil {
			return fail("%v", err)
		}
	case *fromEnv != "":
		if pw = getenv(*fromEnv); pw == "" {
			return fail("environment variable %s is empty or unset", *fromEnv)
		}
	default:
		if pw, err = auth.GeneratePassword(); err != nil {
			return fail("%v", err)
		}
		generated = true
	}
	f, err := load(w.path, true)
	if err != nil {
		return fail("%v", err)
	}
	existed := f.Has(user)
	if err := f.Set(user, pw, *iterations); err != nil {
		return fail("%v", err)
	}
	if err := w.write(f); err != nil {
		return fail("%v", err)
	}
	if generated {
		fmt.Fprintln(stdout, pw)
	}
	verb := "added"
	if existed {
		verb = "changed the password of"
	}
	fmt.Fprintf(stderr, "cgpasswd: %s %s in %s; reload the broker (Mosquitto: SIGHUP)\n", verb, user, w.path)
	return exitOK
}

// load reads the file; a missing file is an empty one when create is set.
func load(path string, create bool) (*auth.PasswordFile, error) {
	f, err := auth.ReadPasswordFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		return auth.NewPasswordFile(), nil
	}
	return f, err
}

// readPassword reads the first line of r, without its line ending.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("no password on stdin")
	}
	return pw, nil
}

// writer writes the file atomically and then sets its owner if asked.
type writer struct {
	path     string
	perm     os.FileMode
	uid, gid int
}

func (w writer) write(f *auth.PasswordFile) error {
	if err := f.WriteFile(w.path, w.perm); err != nil {
		return err
	}
	if w.uid >= 0 {
		if err := os.Chown(w.path, w.uid, w.gid); err != nil {
			return fmt.Errorf("password file: %w", err)
		}
	}
	return nil
}
