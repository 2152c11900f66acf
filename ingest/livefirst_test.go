package ingest

import (
	"fmt"
	"testing"
	"time"
)

// lagRun feeds l a fleet of piles, each sending every period, for d, with
// the lag of pile p at time t given by lag(p, t); it returns the fraction
// of the time l said "behind", and whether it was behind at the end.
func lagRun(l *liveLag, start time.Time, piles int, period, d time.Duration, lag func(p int, t time.Duration) time.Duration) (frac float64, end bool) {
	step := period / time.Duration(piles)
	var behindFor time.Duration
	for t := time.Duration(0); t < d; t += step {
		p := int(t/step) % piles
		now := start.Add(t)
		ts := now.Add(-lag(p, t)).UnixMilli()
		_, end = l.observe(fmt.Sprintf("chargers/s/p%d", p), ts, now)
		if end {
			behindFor += step
		}
	}
	return float64(behindFor) / float64(d), end
}

var lagStart = time.UnixMilli(1_800_000_000_000)

func TestLiveLagOnTimeFleetIsNeverBehind(t *testing.T) {
	l := newLiveLag()
	frac, _ := lagRun(l, lagStart, 1000, time.Second, 30*time.Second, func(p int, _ time.Duration) time.Duration {
		return time.Duration(2+p%7) * time.Millisecond // a few ms of network and jitter
	})
	if frac != 0 {
		t.Fatalf("behind %.1f%% of the time with every message on time", 100*frac)
	}
}

func TestLiveLagSeesABacklog(t *testing.T) {
	l := newLiveLag()
	// On time for 5 s, then a backlog growing by 0.5 s every second.
	frac, end := lagRun(l, lagStart, 1000, time.Second, 10*time.Second, func(_ int, t time.Duration) time.Duration {
		if t < 5*time.Second {
			return 3 * time.Millisecond
		}
		return 3*time.Millisecond + (t-5*time.Second)/2
	})
	if !end {
		t.Fatal("not behind after 5 s of a backlog growing by 0.5 s a second")
	}
	// Seen within about a second: (threshold 200 ms) / (0.5 - 0.1 s/s).
	if frac < 0.35 {
		t.Fatalf("behind only %.1f%% of the time: seen too late", 100*frac)
	}
	// And it clears once the backlog is gone.
	_, end = lagRun(l, lagStart.Add(10*time.Second), 1000, time.Second, 2*time.Second, func(int, time.Duration) time.Duration {
		return 3 * time.Millisecond
	})
	if end {
		t.Fatal("still behind after the backlog cleared")
	}
}

// Clocks off by any constant, for one pile or for all, are not a backlog.
func TestLiveLagIgnoresClockOffsets(t *testing.T) {
	for name, lag := range map[string]func(int, time.Duration) time.Duration{
		"one pile 8 h behind": func(p int, _ time.Duration) time.Duration {
			if p == 7 {
				return 8 * time.Hour
			}
			return 3 * time.Millisecond
		},
		"every pile 8 h behind": func(int, time.Duration) time.Duration { return 8 * time.Hour },
		"every pile 2 s ahead":  func(int, time.Duration) time.Duration { return -2 * time.Second },
		"piles 0..5 s behind":   func(p int, _ time.Duration) time.Duration { return time.Duration(p%50) * 100 * time.Millisecond },
	} {
		t.Run(name, func(t *testing.T) {
			frac, _ := lagRun(newLiveLag(), lagStart, 500, time.Second, 20*time.Second, lag)
			if frac != 0 {
				t.Fatalf("behind %.1f%% of the time", 100*frac)
			}
		})
	}
}

// Every pile's clock stepping back 1 s at once looks like a backlog for a
// while, and is forgotten within about 10 s (baselineRise): storage never
// yields for long to a clock.
func TestLiveLagForgetsAClockStep(t *testing.T) {
	l := newLiveLag()
	_, end := lagRun(l, lagStart, 500, time.Second, 25*time.Second, func(_ int, t time.Duration) time.Duration {
		if t < 5*time.Second {
			return 3 * time.Millisecond
		}
		return time.Second
	})
	if end {
		t.Fatal("still behind 20 s after a 1 s clock step")
	}
}

// A window with fewer than minWindowMessages messages says nothing: one
// late message of a quiet fleet is not a backlog.
func TestLiveLagNeedsMessages(t *testing.T) {
	l := newLiveLag()
	frac, _ := lagRun(l, lagStart, 2, time.Second, 30*time.Second, func(_ int, t time.Duration) time.Duration {
		return t / 2 // growing, but 2 messages a second
	})
	if frac != 0 {
		t.Fatalf("behind %.1f%% of the time on 2 messages a second", 100*frac)
	}
}
