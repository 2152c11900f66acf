package spool

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const childDirEnv = "CHARGEGUARD_SPOOL_CHILD_DIR"

// TestSIGKILLKeepsEveryAckedRecord runs an appender and a drainer in a child
// process, SIGKILLs it mid-stream, and checks that the reopened spool holds
// every record whose Append had returned and was not trimmed, in order,
// without gaps or duplicates.
func TestSIGKILLKeepsEveryAckedRecord(t *testing.T) {
	if os.Getenv(childDirEnv) != "" {
		t.Skip("in the child")
	}
	for round := 0; round < 3; round++ {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		lastAcked, lastTrim := -1, uint64(0)
		sc := bufio.NewScanner(out)
		killed := false
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 2 {
				continue
			}
			n, err := strconv.ParseUint(f[1], 10, 64)
			require.NoError(t, err)
			switch f[0] {
			case "acked":
				lastAcked = int(n)
			case "trimmed":
				lastTrim = n
			}
			if lastAcked >= 1500+round*700 && !killed {
				require.NoError(t, cmd.Process.Kill()) // SIGKILL, by its PID
				killed = true
			}
		}
		require.True(t, killed, "the child ended on its own")
		_ = cmd.Wait()

		s := openT(t, Options{Dir: dir, SegmentBytes: 8 << 10})
		first := s.FirstIndex()
		require.GreaterOrEqual(t, first, lastTrim, "a trim that returned is kept")
		_, recs := available(t, s, first)
		got := seqs(t, recs)
		// Index i holds record i-1: one appender, no gaps.
		require.Equal(t, span(int(first)-1, int(first)-1+len(got)), got)
		require.GreaterOrEqual(t, int(first)-1+len(got)-1, lastAcked, "every acked record is there")
		require.Greater(t, len(got), 100, "the kill left a backlog to check")
		t.Logf("killed after record %d was acked and index %d trimmed; reopened with %d records from index %d in %d segments",
			lastAcked, lastTrim, len(got), first, countSegments(t, dir))
		require.NoError(t, s.Close())
	}
}

// TestSpoolChild is the child process of TestSIGKILLKeepsEveryAckedRecord.
func TestSpoolChild(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("only run as a child")
	}
	s, err := Open(Options{Dir: dir, SegmentBytes: 8 << 10})
	if err != nil {
		panic(err)
	}
	go func() { // the drainer, slower than the appender: a backlog builds up
		from := s.FirstIndex()
		for {
			time.Sleep(time.Millisecond)
			first, recs, err := s.Next(context.Background(), from, 5, 0)
			if err != nil {
				panic(err)
			}
			from = first + uint64(len(recs))
			if err := s.Trim(from); err != nil {
				panic(err)
			}
			fmt.Printf("trimmed %d\n", from)
		}
	}()
	for seq := 0; ; seq += 8 {
		var batch [][]byte
		for i := seq; i < seq+8; i++ {
			batch = append(batch, mkRec(i, 300))
		}
		if err := s.Append(batch); err != nil {
			panic(err)
		}
		fmt.Printf("acked %d\n", seq+7)
	}
}
