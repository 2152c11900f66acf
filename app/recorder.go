package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/chargeguard/chargeguard/ingest"
	"github.com/chargeguard/chargeguard/ingest/spool"
)

// recorder stores the safety engine's alert and audit points through the
// same spool as the readings, so they reach InfluxDB at least once too.
// Record never blocks the engine: when the queue is full (the disk is
// failing and the queue has filled behind it) a point is dropped and
// counted; the engine's log line for it remains.
type recorder struct {
	sp      ingest.Spool
	ch      chan []byte
	log     zerolog.Logger
	dropped prometheus.Counter
}

func newRecorder(sp ingest.Spool, log zerolog.Logger, reg prometheus.Registerer) *recorder {
	r := &recorder{
		sp:  sp,
		ch:  make(chan []byte, 16384),
		log: log.With().Str("component", "recorder").Logger(),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_recorder_dropped_total",
			Help: "Alert and audit points not stored because the spool could not keep up (they are still logged).",
		}),
	}
	reg.MustRegister(r.dropped)
	return r
}

// Record copies lines and queues them.
func (r *recorder) Record(lines []byte) {
	select {
	case r.ch <- append([]byte(nil), lines...):
	default:
		r.dropped.Inc()
	}
}

func (r *recorder) Run(ctx context.Context) error {
	// A spool that stays full or failing (storage degraded) would repeat
	// the line every 2 s.
	retryLog := r.log.Sample(&zerolog.BurstSampler{Burst: 1, Period: time.Minute})
	var recs [][]byte
	flush := func() {
		if len(recs) == 0 {
			return
		}
		backoff := 50 * time.Millisecond
		for {
			err := r.sp.Append(recs)
			if err == nil {
				break
			}
			retryLog.Warn().Err(err).Int("points", len(recs)).Msg("cannot spool alert/audit points; retrying")
			select {
			case <-ctx.Done():
				r.dropped.Add(float64(len(recs)))
				recs = recs[:0]
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 2*time.Second)
		}
		recs = recs[:0]
	}
	for {
		select {
		case <-ctx.Done():
			// Last chance: what is queued now goes to the spool once.
			for {
				select {
				case l := <-r.ch:
					recs = append(recs, spool.EncodeRecord(nil, time.Now(), l))
					continue
				default:
				}
				break
			}
			if len(recs) > 0 {
				if err := r.sp.Append(recs); err != nil {
					r.dropped.Add(float64(len(recs)))
				}
			}
			return nil
		case l := <-r.ch:
			recs = append(recs, spool.EncodeRecord(nil, time.Now(), l))
		drain:
			for len(recs) < 1024 {
				select {
				case l := <-r.ch:
					recs = append(recs, spool.EncodeRecord(nil, time.Now(), l))
				default:
					break drain
				}
			}
			flush()
		}
	}
}
