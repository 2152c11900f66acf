package alerting

import "slices"

// riseCap is the number of samples a port's rate-of-rise window holds.
const riseCap = 32

// riseRing holds the last samples of one charging port for the
// rate-of-rise rule: the pile's ts (ms, as an offset from base so that it
// fits 32 bits) and temp_c.
//
// The run of samples judged is the shortest run of newest samples that
// spans at least the rise window. The rise counts as sustained when both
// the least-squares slope over the run and the Theil–Sen slope (the median
// of the slopes between every pair of samples) reach the limit. The
// least-squares slope is cheap and computed on every sample, but a single
// outlier at the end of a short run moves it a lot (a 6 °C spike in 5 s
// samples adds about 8 °C/min over 30 s); the median of pairwise slopes is
// unmoved by one outlier anywhere, and is only computed to confirm a
// least-squares trip. A run really rising at the limit for 30 s trips both:
// every pair of its samples rises at that rate.
//
// Samples are kept at least minStep apart (window/(riseCap-2)) except the
// newest, which replaces a too-close predecessor, so a full ring always
// spans the window however fast the pile reports. Only samples with a pile
// ts newer than the newest kept enter the ring: a reordered or duplicated
// message never moves the window backwards.
type riseRing struct {
	base int64 // pile ms of offset 0
	ts   [riseCap]int32
	temp [riseCap]float32
	head uint8 // index of the oldest sample
	n    uint8
}

func (r *riseRing) reset() { r.n, r.head = 0, 0 }

func (r *riseRing) at(i int) (int64, float32) {
	j := (int(r.head) + i) % riseCap
	return r.base + int64(r.ts[j]), r.temp[j]
}

// push adds a sample (pile ms, °C) and reports whether it was kept.
func (r *riseRing) push(ts int64, temp float32, minStep int64) bool {
	if r.n == 0 {
		r.base = ts
		r.ts[r.head] = 0
		r.temp[r.head] = temp
		r.n = 1
		return true
	}
	last, _ := r.at(int(r.n) - 1)
	if ts <= last {
		return false
	}
	if ts-r.base > 1<<30 {
		r.rebase()
		if ts-r.base > 1<<30 {
			// Days between samples: nothing in the window is relevant.
			r.reset()
			return r.push(ts, temp, minStep)
		}
	}
	if r.n >= 2 {
		prev, _ := r.at(int(r.n) - 2)
		if last-prev < minStep {
			// The newest is too close to its predecessor: replace it.
			j := (int(r.head) + int(r.n) - 1) % riseCap
			r.ts[j] = int32(ts - r.base)
			r.temp[j] = temp
			return true
		}
	}
	if r.n == riseCap {
		r.head = uint8((int(r.head) + 1) % riseCap)
		r.n--
	}
	j := (int(r.head) + int(r.n)) % riseCap
	r.ts[j] = int32(ts - r.base)
	r.temp[j] = temp
	r.n++
	return true
}

// rebase moves base to the oldest sample so that offsets stay small.
func (r *riseRing) rebase() {
	oldest, _ := r.at(0)
	d := oldest - r.base
	for i := 0; i < int(r.n); i++ {
		j := (int(r.head) + i) % riseCap
		r.ts[j] -= int32(d)
	}
	r.base = oldest
}

// slope returns the least-squares slope in °C per minute over the shortest
// run of newest samples spanning at least window ms, and whether there is
// such a run with at least minSamples samples.
func (r *riseRing) slope(window int64, minSamples int) (float64, bool) {
	if r.n < 2 {
		return 0, false
	}
	newest, _ := r.at(int(r.n) - 1)
	first := -1
	for i := int(r.n) - 2; i >= 0; i-- {
		ts, _ := r.at(i)
		if newest-ts >= window {
			first = i
			break
		}
	}
	if first < 0 || int(r.n)-first < minSamples {
		return 0, false
	}
	var sx, sy float64
	k := float64(int(r.n) - first)
	for i := first; i < int(r.n); i++ {
		ts, t := r.at(i)
		sx += float64(ts-newest) / 1000
		sy += float64(t)
	}
	mx, my := sx/k, sy/k
	var sxy, sxx float64
	for i := first; i < int(r.n); i++ {
		ts, t := r.at(i)
		dx := float64(ts-newest)/1000 - mx
		sxy += dx * (float64(t) - my)
		sxx += dx * dx
	}
	if sxx == 0 {
		return 0, false
	}
	return sxy / sxx * 60, true
}

// medianSlope returns the Theil–Sen slope in °C per minute over the same
// run as slope: the median of the slopes between every pair of samples. It
// does not allocate.
func (r *riseRing) medianSlope(window int64) float64 {
	newest, _ := r.at(int(r.n) - 1)
	first := 0
	for i := int(r.n) - 2; i >= 0; i-- {
		if ts, _ := r.at(i); newest-ts >= window {
			first = i
			break
		}
	}
	var buf [riseCap * (riseCap - 1) / 2]float32
	k := 0
	for i := first; i < int(r.n); i++ {
		ti, vi := r.at(i)
		for j := i + 1; j < int(r.n); j++ {
			tj, vj := r.at(j)
			buf[k] = (vj - vi) / float32(tj-ti) * 60000
			k++
		}
	}
	s := buf[:k]
	slices.Sort(s)
	if k%2 == 1 {
		return float64(s[k/2])
	}
	return (float64(s[k/2-1]) + float64(s[k/2])) / 2
}
