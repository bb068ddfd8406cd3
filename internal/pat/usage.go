package pat

import (
	"context"
	"time"
)

// Last use. A token's last_used_at is written at most once per
// UsageInterval, never on the request's path: Authenticate queues the write
// without blocking (a full queue drops it) and Run, a background worker
// started and stopped with the service like the mail queue, performs it.
// The interval is kept per process from two sources: the last use stored
// in the row Authenticate read anyway (so several instances rarely write
// within a minute of each other) and the uses this process queued (so
// requests arriving before the write lands do not queue another).

// touch is one pending last-use write.
type touch struct {
	id string
	at time.Time
}

// maxTracked bounds the per-token bookkeeping; past it, entries older than
// the interval are forgotten (they no longer suppress anything).
const maxTracked = 10000

// recordUse queues a last-use write for t at now unless one was stored or
// queued less than UsageInterval ago. It never blocks.
func (s *Service) recordUse(t Token, now time.Time) {
	if t.LastUsedAt != nil && now.Sub(*t.LastUsedAt) < UsageInterval {
		return
	}
	s.mu.Lock()
	if last, ok := s.used[t.ID]; ok && now.Sub(last) < UsageInterval {
		s.mu.Unlock()
		return
	}
	if len(s.used) >= maxTracked {
		for id, last := range s.used {
			if now.Sub(last) >= UsageInterval {
				delete(s.used, id)
			}
		}
	}
	s.used[t.ID] = now
	s.mu.Unlock()
	select {
	case s.touches <- touch{id: t.ID, at: now}:
	default:
		s.dropped.Add(1) // reported by Run; the next use after the interval tries again
	}
}

// Run writes queued last uses until ctx is done, then writes what is still
// queued (at most the queue's size, a few milliseconds each) and returns.
// Each write gets a few seconds of its own: the end of ctx stops the loop,
// not a write under way.
func (s *Service) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case t := <-s.touches:
					s.write(t)
				default:
					return
				}
			}
		case t := <-s.touches:
			s.write(t)
		}
	}
}

// write stores one last use; a failure is logged (there is no caller to
// return it to) and the use is lost, which costs nothing but precision.
func (s *Service) write(t touch) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.store.TouchPAT(ctx, t.id, t.at); err != nil {
		s.logger.Warn("personal access token: last use not recorded", "token_id", t.id, "err", err)
	}
	if n := s.dropped.Swap(0); n > 0 {
		s.logger.Warn("personal access token: last-use queue full, uses not recorded", "dropped", n)
	}
}
