package ingest

import (
	"sync/atomic"
	"time"
)

// Live first: when the box is overloaded (storage, InfluxDB and the broker
// wanting more CPU than there is), the live session that feeds the safety
// engine falls behind like everything else, and a cut waits behind every
// telemetry message queued before it: 10 s and more in
// BenchmarkDetectionToCommand/100k_samples on 2 cores. Storage can wait
// (its session is persistent and acked only once durable: the broker keeps
// its backlog); a cut cannot. So the live session measures how far behind
// it is, and while it is behind the storage session yields.
//
// How far behind: a pile stamps each message with its ts; the live
// session's lag is receive time − ts. A pile's clock may be off by any
// constant, so each pile's lag is compared with its own baseline, the
// smallest lag it had lately (rising by baselineRise per second, so a pile
// whose clock stepped back is forgotten within seconds). The excess over
// the baseline is the queueing delay. Only when every message of a window
// (at least minWindowMessages of them) is late by more than lagThreshold is
// the session behind: one pile with a late clock or one slow message is
// not a backlog, and a clock ahead of ours can only make the session look
// on time (storage then runs as before).
const (
	lagWindow         = 100 * time.Millisecond
	lagThreshold      = 200 * time.Millisecond
	minWindowMessages = 3
	// baselineRise is how fast a pile's baseline forgets its lowest lag: a
	// backlog growing more slowly than this is not seen, a clock stepped
	// back by 1 s is forgotten in 10 s.
	baselineRise = 100 * time.Millisecond // per second
	// yieldStep is how long the storage session waits per message while
	// the live session is behind: at most 1/yieldStep messages a second
	// are stored then, so storage never stops altogether.
	yieldStep = 20 * time.Millisecond
	// maxLagPiles bounds the baselines kept; past it they are forgotten
	// all at once (and relearnt from the next message of each pile).
	maxLagPiles = 1 << 20
)

type pileLag struct {
	lag time.Duration // the lowest lag, at
	at  time.Time
}

// liveLag is the live session's view of its own delay. observe runs on the
// live session's paho goroutine only; behind is read by the storage session.
type liveLag struct {
	piles    map[string]pileLag
	winStart time.Time
	winMin   time.Duration // the smallest excess in the window
	winN     int
	behind   atomic.Bool
	excess   atomic.Int64 // the last window's smallest excess, ns
}

func newLiveLag() *liveLag { return &liveLag{piles: map[string]pileLag{}} }

// observe notes a live message of pile (site/pile) stamped tsMS (the pile's
// ts, ms), received at now, and reports whether the state changed at the
// end of a window (and to what).
func (l *liveLag) observe(pile string, tsMS int64, now time.Time) (changed, behind bool) {
	if tsMS <= 0 {
		return false, l.behind.Load()
	}
	lag := now.Sub(time.UnixMilli(tsMS))
	b, ok := l.piles[pile]
	if ok {
		// The baseline rises with time, so a clock stepped back is forgotten.
		b.lag += time.Duration(float64(now.Sub(b.at)) / float64(time.Second) * float64(baselineRise))
		b.at = now
	}
	if !ok || lag < b.lag {
		if !ok && len(l.piles) >= maxLagPiles {
			clear(l.piles)
		}
		b = pileLag{lag: lag, at: now}
	}
	l.piles[pile] = b
	excess := lag - b.lag

	if l.winStart.IsZero() {
		l.winStart = now
	}
	if now.Sub(l.winStart) >= lagWindow {
		was := l.behind.Load()
		is := l.winN >= minWindowMessages && l.winMin > lagThreshold
		if l.winN > 0 {
			l.excess.Store(int64(l.winMin))
		}
		l.behind.Store(is)
		l.winStart, l.winN, l.winMin = now, 0, 0
		changed, behind = was != is, is
	}
	if l.winN == 0 || excess < l.winMin {
		l.winMin = excess
	}
	l.winN++
	return changed, behind || (!changed && l.behind.Load())
}
