package loadgen

import (
	"slices"
	"sync"
)

// What became of sessions when connections came back is counted per
// sessionSlot of the run, not per client: a storm of 100k reconnections
// over a few seconds makes a few dozen tallies, and a fault's share is
// the tallies within its window.
const sessionSlotMs = 100

// SessionTally counts the session events of one slot of the run.
type SessionTally struct {
	At int64 `json:"at_ms"` // Unix ms, the slot's start
	// Dropped connections had a CONNACK and were lost during the run.
	Dropped uint64 `json:"dropped,omitempty"`
	// Resumed and Fresh are reconnections (not first connections) whose
	// CONNACK said Session Present 1 and 0.
	Resumed uint64 `json:"resumed,omitempty"`
	Fresh   uint64 `json:"fresh,omitempty"`
	// SubscribersResumed are subscribers among Resumed: they do not
	// subscribe again. SubscriptionsKept of them then received a message
	// published after they reconnected, which only the subscription the
	// broker kept could have brought.
	SubscribersResumed uint64 `json:"subs_resumed,omitempty"`
	SubscriptionsKept  uint64 `json:"subs_kept,omitempty"`
}

// sessionLog gathers the tallies of a run; reconnections are rare next
// to messages, so a mutex is cheap enough.
type sessionLog struct {
	mu    sync.Mutex
	slots map[int64]*SessionTally
}

// add applies f to the tally of the slot holding unixNs.
func (l *sessionLog) add(unixNs int64, f func(*SessionTally)) {
	at := unixNs / 1e6
	at -= at % sessionSlotMs
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.slots == nil {
		l.slots = map[int64]*SessionTally{}
	}
	t := l.slots[at]
	if t == nil {
		t = &SessionTally{At: at}
		l.slots[at] = t
	}
	f(t)
}

// tallies lists the slots in time order.
func (l *sessionLog) tallies() []SessionTally {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]SessionTally, 0, len(l.slots))
	for _, t := range l.slots {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b SessionTally) int { return int(a.At - b.At) })
	return out
}

// mergeTallies adds up tallies of the same slots.
func mergeTallies(a, b []SessionTally) []SessionTally {
	var l sessionLog
	for _, xs := range [][]SessionTally{a, b} {
		for _, x := range xs {
			l.add(x.At*1e6, func(t *SessionTally) {
				t.Dropped += x.Dropped
				t.Resumed += x.Resumed
				t.Fresh += x.Fresh
				t.SubscribersResumed += x.SubscribersResumed
				t.SubscriptionsKept += x.SubscriptionsKept
			})
		}
	}
	if len(l.slots) == 0 {
		return nil
	}
	return l.tallies()
}
