package auth

import (
	"bufio"
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/chargeguard/chargeguard/telemetry"
)

// DefaultIterations is the PBKDF2 iteration count that mosquitto_passwd 2.0
// uses. It is low because the broker pays it on every connect (a whole fleet
// reconnects after a broker restart) and because generated pile passwords
// carry 144 random bits, which no iteration count needs to stretch. Raise it
// (cgpasswd -iterations) for passwords that people choose.
const DefaultIterations = 101

// Lengths fixed by Mosquitto: it refuses an entry whose salt is not 12 bytes
// or whose hash is not 64 bytes (SHA-512).
const (
	saltLen = 12
	hashLen = sha512.Size
)

// MaxIterations bounds the iteration count read from a file, so a corrupt
// or hostile entry cannot make each connect attempt cost minutes of CPU.
const MaxIterations = 10_000_000

// ErrBadHash is wrapped by every error about a malformed password hash.
var ErrBadHash = errors.New("malformed password hash")

// PasswordFile is a Mosquitto password file in memory: one
// "username:hash" line per account, in file order, with comment and blank
// lines kept so that rewriting a file an operator annotated keeps the notes.
// It is not safe for concurrent use; Hook swaps whole files instead.
type PasswordFile struct {
	lines []pwLine
	users map[string]int // username → index in lines
}

type pwLine struct {
	raw  string // the line as read, for comments and blank lines
	user string // "" for a comment or blank line
	hash string
	cred credential
}

// credential is a decoded hash: which digest, its salt and expected output.
type credential struct {
	pbkdf2     bool // $7$ (PBKDF2-SHA512); false is $6$ (SHA-512 of password+salt)
	iterations int
	salt       []byte
	sum        []byte
}

// NewPasswordFile returns an empty file.
func NewPasswordFile() *PasswordFile {
	return &PasswordFile{users: map[string]int{}}
}

// ParsePasswordFile reads a password file in Mosquitto 2.0's format. Lines
// starting with '#' and blank lines are kept as they are. Every other line
// must be "username:$7$iterations$salt$hash" (what mosquitto_passwd writes
// by default) or "username:$6$salt$hash" (mosquitto_passwd -H sha512), with
// standard base64 salt (12 bytes) and hash (64 bytes).
//
// It is stricter than Mosquitto, which logs and skips a bad line: an entry
// that cannot be checked, or a username that appears twice, is an error
// naming the line, because a pile whose entry is silently dropped is a pile
// that cannot report a fire.
func ParsePasswordFile(r io.Reader) (*PasswordFile, error) {
	f := NewPasswordFile()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		raw := strings.TrimRight(sc.Text(), " \t\r")
		if raw == "" || strings.HasPrefix(raw, "#") {
			f.lines = append(f.lines, pwLine{raw: raw})
			continue
		}
		user, hash, ok := strings.Cut(raw, ":")
		user, hash = strings.TrimSpace(user), strings.TrimSpace(hash)
		if !ok || user == "" {
			return nil, fmt.Errorf("line %d: want username:hash", n)
		}
		cred, err := parseHash(hash)
		if err != nil {
			return nil, fmt.Errorf("line %d (user %q): %w", n, user, err)
		}
		if prev, dup := f.users[user]; dup {
			return nil, fmt.Errorf("line %d: user %q already on line %d", n, user, prev+1)
		}
		f.users[user] = len(f.lines)
		f.lines = append(f.lines, pwLine{raw: raw, user: user, hash: hash, cred: cred})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n+1, err)
	}
	return f, nil
}

// ReadPasswordFile reads and parses the file at path.
func ReadPasswordFile(path string) (*PasswordFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("password file: %w", err)
	}
	f, err := ParsePasswordFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("password file %s: %w", path, err)
	}
	return f, nil
}

// Len is the number of accounts.
func (f *PasswordFile) Len() int { return len(f.users) }

// Users lists the accounts, sorted.
func (f *PasswordFile) Users() []string {
	out := make([]string, 0, len(f.users))
	for u := range f.users {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

// Has reports whether user has an entry.
func (f *PasswordFile) Has(user string) bool {
	_, ok := f.users[user]
	return ok
}

// hash returns user's encoded hash as it stands in the file.
func (f *PasswordFile) hash(user string) (string, bool) {
	i, ok := f.users[user]
	if !ok {
		return "", false
	}
	return f.lines[i].hash, true
}

// dummy is checked against when the user is unknown, so that a refusal
// takes as long for an unknown user as for a wrong password and does not
// tell an attacker which pile ids exist.
var dummy = credential{pbkdf2: true, iterations: DefaultIterations, salt: make([]byte, saltLen), sum: make([]byte, hashLen)}

// Verify reports whether password is user's password. An unknown user or an
// empty password is never accepted.
func (f *PasswordFile) Verify(user, password string) bool {
	i, ok := f.users[user]
	if !ok {
		dummy.check(password)
		return false
	}
	return f.lines[i].cred.check(password) && password != ""
}

// Set adds user with a new salted PBKDF2-SHA512 hash of password, or
// replaces the user's hash in place. The username must pass ValidUsername.
func (f *PasswordFile) Set(user, password string, iterations int) error {
	if err := ValidUsername(user); err != nil {
		return err
	}
	if password == "" {
		return errors.New("empty password")
	}
	if strings.ContainsAny(password, "\n\r") {
		return errors.New("password holds a line break")
	}
	hash, err := HashPassword(password, iterations, rand.Reader)
	if err != nil {
		return err
	}
	cred, err := parseHash(hash)
	if err != nil {
		return err // cannot happen: HashPassword writes what parseHash reads
	}
	line := pwLine{raw: user + ":" + hash, user: user, hash: hash, cred: cred}
	if i, ok := f.users[user]; ok {
		f.lines[i] = line
		return nil
	}
	f.users[user] = len(f.lines)
	f.lines = append(f.lines, line)
	return nil
}

// Delete removes user; it reports whether the user was there.
func (f *PasswordFile) Delete(user string) bool {
	i, ok := f.users[user]
	if !ok {
		return false
	}
	f.lines = append(f.lines[:i], f.lines[i+1:]...)
	delete(f.users, user)
	for u, j := range f.users {
		if j > i {
			f.users[u] = j - 1
		}
	}
	return true
}

// WriteTo writes the file in Mosquitto's format.
func (f *PasswordFile) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	for _, l := range f.lines {
		if l.user == "" {
			b.WriteString(l.raw)
		} else {
			b.WriteString(l.user + ":" + l.hash)
		}
		b.WriteByte('\n')
	}
	return b.WriteTo(w)
}

// WriteFile replaces the file at path with f atomically (a temporary file in
// the same directory, fsynced, then renamed), so that a broker reloading the
// file never reads half of it. A new file is created with perm; an existing
// file keeps its mode and, where the process is allowed to set it, its
// owner, because the broker reads the file as its own unprivileged user.
func (f *PasswordFile) WriteFile(path string, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	mode := perm
	var keepOwner func(string) error
	if info, statErr := os.Stat(path); statErr == nil {
		mode = info.Mode().Perm()
		keepOwner = ownerKeeper(info)
	} else if !errors.Is(statErr, os.ErrNotExist) {
		return fmt.Errorf("password file: %w", statErr)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("password file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = f.WriteTo(tmp); err != nil {
		return fmt.Errorf("password file: write %s: %w", tmp.Name(), err)
	}
	if err = tmp.Chmod(mode); err != nil {
		return fmt.Errorf("password file: %w", err)
	}
	if keepOwner != nil {
		if err = keepOwner(tmp.Name()); err != nil {
			return fmt.Errorf("password file: keep the owner of %s: %w", path, err)
		}
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("password file: fsync: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("password file: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("password file: %w", err)
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync() // make the rename durable; not every file system supports it
		d.Close()
	}
	return nil
}

// HashPassword returns Mosquitto 2.0's PBKDF2-SHA512 encoding of password:
// "$7$" iterations "$" base64(12-byte salt) "$" base64(64-byte key), the salt
// read from rand.
func HashPassword(password string, iterations int, rand io.Reader) (string, error) {
	if iterations < 1 || iterations > MaxIterations {
		return "", fmt.Errorf("iterations %d: want 1..%d", iterations, MaxIterations)
	}
	salt := make([]byte, saltLen)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return "", fmt.Errorf("read salt: %w", err)
	}
	key, err := pbkdf2.Key(sha512.New, password, salt, iterations, hashLen)
	if err != nil {
		return "", fmt.Errorf("pbkdf2: %w", err)
	}
	enc := base64.StdEncoding
	return "$7$" + strconv.Itoa(iterations) + "$" + enc.EncodeToString(salt) + "$" + enc.EncodeToString(key), nil
}

// CheckHash reports whether password matches hash, an encoded password in
// Mosquitto's $6$ or $7$ format.
func CheckHash(hash, password string) (bool, error) {
	c, err := parseHash(hash)
	if err != nil {
		return false, err
	}
	return c.check(password), nil
}

func parseHash(s string) (credential, error) {
	parts := strings.Split(s, "$")
	// "$7$101$salt$hash" splits into "", "7", "101", "salt", "hash".
	if len(parts) < 2 || parts[0] != "" {
		return credential{}, fmt.Errorf("%w: want $7$iterations$salt$hash", ErrBadHash)
	}
	var c credential
	switch {
	case parts[1] == "7" && len(parts) == 5:
		c.pbkdf2 = true
		n, err := strconv.Atoi(parts[2])
		if err != nil || n < 1 || n > MaxIterations {
			return credential{}, fmt.Errorf("%w: iterations %q: want 1..%d", ErrBadHash, parts[2], MaxIterations)
		}
		c.iterations = n
		parts = parts[3:]
	case parts[1] == "6" && len(parts) == 4:
		parts = parts[2:]
	default:
		return credential{}, fmt.Errorf("%w: want $7$iterations$salt$hash (PBKDF2-SHA512) or $6$salt$hash (SHA-512)", ErrBadHash)
	}
	var err error
	if c.salt, err = base64.StdEncoding.DecodeString(parts[0]); err != nil || len(c.salt) != saltLen {
		return credential{}, fmt.Errorf("%w: salt must be %d bytes of base64", ErrBadHash, saltLen)
	}
	if c.sum, err = base64.StdEncoding.DecodeString(parts[1]); err != nil || len(c.sum) != hashLen {
		return credential{}, fmt.Errorf("%w: hash must be %d bytes of base64", ErrBadHash, hashLen)
	}
	return c, nil
}

func (c credential) check(password string) bool {
	var got []byte
	if c.pbkdf2 {
		k, err := pbkdf2.Key(sha512.New, password, c.salt, c.iterations, hashLen)
		if err != nil {
			return false
		}
		got = k
	} else {
		// Mosquitto's $6$: one SHA-512 over the password followed by the salt.
		h := sha512.New()
		h.Write([]byte(password))
		h.Write(c.salt)
		got = h.Sum(nil)
	}
	return subtle.ConstantTimeCompare(got, c.sum) == 1
}

// GeneratePassword returns a random password of 24 characters from the URL
// base64 alphabet (144 bits), which needs no quoting in a shell, a YAML
// file or a pile's configuration page.
func GeneratePassword() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// PileUsername is the MQTT username of a pile: "{site}/{pile}".
func PileUsername(site, pile string) string { return site + "/" + pile }

// SplitPileUsername splits a pile's username into its site and pile ids. ok
// is false for anything else (a service account, an id that breaks the
// alphabet, more or fewer than two levels).
func SplitPileUsername(user string) (site, pile string, ok bool) {
	site, pile, found := strings.Cut(user, "/")
	if !found || !telemetry.ValidID(site) || !telemetry.ValidID(pile) {
		return "", "", false
	}
	return site, pile, true
}

// ValidUsername checks a username before it is added: a pile's "site/pile"
// or an account name, every id in [A-Za-z0-9_-]{1,64}. Anything else could
// become an MQTT wildcard or an extra topic level when Mosquitto substitutes
// it for %u in the ACL.
func ValidUsername(user string) error {
	if _, _, ok := SplitPileUsername(user); ok {
		return nil
	}
	if telemetry.ValidID(user) {
		return nil
	}
	return fmt.Errorf("username %q: want site/pile (a pile) or a single name (an account), each id matching [A-Za-z0-9_-]{1,64}", truncate(user, 80))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
