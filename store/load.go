package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// State is what a store held when it was opened.
type State struct {
	Sessions      []Session
	Subscriptions []Subscription
	// Inbound are the identifiers of QoS 2 messages received and not yet
	// released, by client identifier.
	Inbound map[string][]uint16
	// Deliveries are in Seq order, which is each session's order.
	Deliveries []Delivery
	Retained   []Message
	Wills      []Will

	lastSeq uint64
}

// load reads and checks the whole store. Every fault is an error naming
// the file and, for a record, its bucket and key: nothing is skipped.
func load(db *bolt.DB, path string) (st *State, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			st, err = nil, fmt.Errorf("store %s is damaged: %v", path, r)
		}
	}()
	st = &State{Inbound: map[string][]uint16{}}
	err = db.View(func(tx *bolt.Tx) error {
		var problems []string
		for e := range tx.Check() {
			problems = append(problems, e.Error())
		}
		if len(problems) > 0 {
			more := ""
			if len(problems) > 1 {
				more = fmt.Sprintf(" (and %d more problems)", len(problems)-1)
			}
			return fmt.Errorf("is damaged: %s%s", problems[0], more)
		}
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("is not a mqttbench store: no %s bucket", name)
			}
		}
		if v := tx.Bucket(bucketMeta).Get([]byte("format")); v == nil {
			return errors.New("is not a mqttbench store: no format record")
		} else if _, err := unseal(v); err != nil {
			return fmt.Errorf("has an unknown format (meta/format: %v)", err)
		}
		return st.read(tx)
	})
	if err != nil {
		return nil, fmt.Errorf("store %s %w", path, err)
	}
	return st, nil
}

// read decodes every bucket.
func (st *State) read(tx *bolt.Tx) error {
	each := func(bucket []byte, fn func(k, v []byte) error) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			if err := fn(k, v); err != nil {
				return fmt.Errorf("is damaged: %s record %q: %v", bucket, printable(k), err)
			}
			return nil
		})
	}
	err := each(bucketSessions, func(k, v []byte) error {
		s, err := decodeSession(string(k), v)
		st.Sessions = append(st.Sessions, s)
		return err
	})
	if err != nil {
		return err
	}
	err = each(bucketSubs, func(k, v []byte) error {
		id, filter, err := splitClientKey(k)
		if err != nil {
			return err
		}
		s, err := decodeSub(id, string(filter), v)
		st.Subscriptions = append(st.Subscriptions, s)
		return err
	})
	if err != nil {
		return err
	}
	err = each(bucketInbound, func(k, v []byte) error {
		id, rest, err := splitClientKey(k)
		if err == nil && len(rest) != 2 {
			err = errors.New("malformed key")
		}
		if err != nil {
			return err
		}
		if _, err := unseal(v); err != nil {
			return err
		}
		st.Inbound[id] = append(st.Inbound[id], binary.BigEndian.Uint16(rest))
		return nil
	})
	if err != nil {
		return err
	}
	err = each(bucketDeliveries, func(k, v []byte) error {
		if len(k) != 8 {
			return errors.New("malformed key")
		}
		seq := binary.BigEndian.Uint64(k)
		d, err := decodeDelivery(seq, v)
		st.Deliveries = append(st.Deliveries, d)
		st.lastSeq = seq // keys are in order
		return err
	})
	if err != nil {
		return err
	}
	err = each(bucketRetained, func(k, v []byte) error {
		m, err := decodeMessage(v)
		if err == nil && string(m.Topic) != string(k) {
			err = errors.New("topic does not match its key")
		}
		st.Retained = append(st.Retained, m)
		return err
	})
	if err != nil {
		return err
	}
	return each(bucketWills, func(k, v []byte) error {
		w, err := decodeWill(string(k), v)
		st.Wills = append(st.Wills, w)
		return err
	})
}

// printable shows a key in an error message.
func printable(k []byte) string {
	s := strings.ToValidUTF8(string(k), "?")
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return s
}
