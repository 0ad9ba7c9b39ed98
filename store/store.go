// Package store keeps the reference broker's state on disk, so that
// sessions (subscriptions and expiry deadlines), QoS 1 and 2 messages
// queued or in flight in both directions, retained messages and wills
// survive a restart or a crash.
//
// It is a bbolt (go.etcd.io/bbolt) file, mqttbench.db in the data
// directory, written by group commit: the broker's changes go into the
// open batch without waiting; one goroutine commits batch after batch, each
// in one bbolt transaction, and then runs the callbacks of those waiting
// for it (Mark, Wait). While a commit runs the next batch grows, so one
// fsync covers every acknowledgement that arrived meanwhile. A change that
// is undone before its batch commits (a message put in a session and
// acknowledged by its subscriber within the same batch) never reaches the
// file. Fsync says when batches are synced; every mode writes a batch to
// the file before anyone waiting for it is told.
//
// A damaged file is an error at Open, never a silent loss: bbolt checks
// its meta pages; Open checks that the file is as long as they say, runs
// bbolt's check of every page's accounting (Tx.Check: a page neither in
// use nor free means lost records) and decodes every record, each of
// which carries its own CRC-32C. A new store is built under another name
// and renamed into place, so an empty file is damage too. There is no
// repair: move the directory aside and start empty, or restore it from a
// backup (bbolt's command line tool can copy out what is still readable).
package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrInUse is the error of Open when another process has the store open.
var ErrInUse = errors.New("in use by another process")

// FileName is the store's file in the data directory.
const FileName = "mqttbench.db"

// groupWindow is the least time between two commits when they are not
// synced: a commit costs about 0.1 ms of CPU whatever its size, so without
// it a busy broker would spend a core committing batches of one. Under
// FsyncAlways the sync itself spaces commits.
const groupWindow = time.Millisecond

// maxPending is how many changes the open batch may hold before Throttle
// makes publishers wait: past it the disk (or the CPU the committer gets)
// is behind, and a bigger batch would only make every acknowledgement
// later and the memory larger.
const maxPending = 32 << 10

// Options configure a Store.
type Options struct {
	Fsync Fsync
}

// Store is an open store. Its methods are safe from any goroutine; the
// changes (Put..., Add..., Delete...) never wait for the disk.
type Store struct {
	db    *bolt.DB
	path  string
	fsync Fsync

	mu      sync.Mutex
	pending batch
	open    uint64 // the batch changes go into now
	waiters []waiter
	closed  bool
	state   *State

	lastSize  int // deliveries in the last batch: the next one's map starts that big
	closeOnce sync.Once
	failOnce  sync.Once
	closeErr  error
	// cut is held (read) by Hold, around changes that must commit together;
	// the committer takes it to close a batch.
	cut sync.RWMutex
	// full is signalled when the committer takes a batch, for Throttle.
	full     *sync.Cond
	fullSize atomic.Int64

	wake    chan struct{}
	done    chan struct{} // the committer has stopped
	failed  chan struct{} // closed when a commit or an fsync fails
	err     error         // why; set before failed is closed
	durable atomic.Uint64 // the last batch committed
	nextSeq atomic.Uint64

	commits atomic.Uint64
	syncs   atomic.Uint64
	writes  atomic.Uint64
	busy    atomic.Int64 // nanoseconds in commits and syncs
}

// op is a pending change: a value to put, or nil to delete. A fresh key
// was never committed, so deleting it before it is needs no write at all.
type op struct {
	val   []byte
	fresh bool
}

func (o op) delete() bool { return o.val == nil }

// batch is the changes of a batch: deliveries, most of them, by sequence
// number, the others by bucket index and key.
type batch struct {
	deliveries map[uint64]op
	other      map[string]op
}

func (b *batch) len() int { return len(b.deliveries) + len(b.other) }

// merge records o for key k of m: a delete undoes a change never
// committed; a put keeps its key's freshness.
func merge[K comparable](m map[K]op, k K, o op) {
	old, ok := m[k]
	switch {
	case o.delete() && ok && old.fresh:
		delete(m, k) // never committed: nothing to undo
	case ok:
		o.fresh = old.fresh && !o.delete()
		m[k] = o
	default:
		m[k] = o
	}
}

type waiter struct {
	batch uint64
	fn    func()
}

// Open opens the store in dir, creating both when missing, and reads what
// it holds (see Recovered). A file that is damaged, of another format or in
// use by another process is an error naming the file.
func Open(dir string, o Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := create(path); err != nil {
			return nil, err
		}
	}
	if err := precheck(path); err != nil {
		return nil, err
	}
	db, err := openBolt(path, o.Fsync)
	if err != nil {
		return nil, err
	}
	state, err := load(db, path)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{
		db: db, path: path, fsync: o.Fsync, state: state, open: 1,
		wake: make(chan struct{}, 1), done: make(chan struct{}), failed: make(chan struct{}),
	}
	s.full = sync.NewCond(&s.mu)
	s.nextSeq.Store(state.lastSeq)
	go s.run()
	return s, nil
}

// openBolt opens the file. bbolt panics on some damaged files: that
// becomes an error here (and the process keeps the file mapped, and so
// locked, until it exits).
func openBolt(path string, f Fsync) (db *bolt.DB, err error) {
	var file *os.File
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				db.Close()
			} else if file != nil {
				file.Close() // a panic in Open: let go of the file and its lock
			}
			db, err = nil, fmt.Errorf("store %s is damaged: %v", path, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			var err error
			file, err = os.OpenFile(name, flag, perm)
			return file, err
		},
		Timeout:      time.Second,
		NoSync:       f.Mode != FsyncAlways,
		FreelistType: bolt.FreelistMapType,
		// Keeping the freelist on disk lets Check find a page that is
		// neither reachable nor free: a damaged branch page would otherwise
		// drop what it led to without a word.
		NoFreelistSync: false,
	})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("store %s is %w", path, ErrInUse)
	case errors.As(err, new(*os.PathError)):
		return nil, fmt.Errorf("store %s: %w", path, err) // permissions, a directory
	case err != nil:
		// Invalid or mismatched meta pages, a file shorter than a page.
		return nil, fmt.Errorf("store %s is damaged or not a store: %v", path, err)
	}
	return db, nil
}

// Path is the store's file.
func (s *Store) Path() string { return s.path }

// Fsync is the store's fsync policy.
func (s *Store) Fsync() Fsync { return s.fsync }

// Recovered returns what the store held when it was opened, once; later
// calls return nil.
func (s *Store) Recovered() *State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	s.state = nil
	return st
}

// NextSeq returns a delivery sequence number above every one in the store.
func (s *Store) NextSeq() uint64 { return s.nextSeq.Add(1) }

// Mark returns the batch that makes every change made so far durable.
func (s *Store) Mark() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending.len() > 0 {
		return s.open
	}
	return s.open - 1 // committed, or being committed
}

// Durable reports whether batch has been committed (and synced, as the
// fsync policy says).
func (s *Store) Durable(batch uint64) bool { return s.durable.Load() >= batch }

// Wait calls fn, from the committing goroutine, once batch is durable. It
// reports false, without calling fn, when it already is. fn must not wait
// for the store.
func (s *Store) Wait(batch uint64, fn func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.durable.Load() >= batch {
		return false
	}
	s.waiters = append(s.waiters, waiter{batch, fn})
	return true
}

// Hold keeps the open batch open until Release: the changes made between
// them commit in one batch, all or none of them durable after a crash. It
// must be called with no lock held that a change or a Wait callback can
// wait for, as Release must follow soon: the committer waits for it.
func (s *Store) Hold() { s.cut.RLock() }

// Release ends Hold.
func (s *Store) Release() { s.cut.RUnlock() }

// Throttle waits while the open batch is full (the store is behind): a
// connection calls it before it takes a new message in, so publishers
// feel the disk through TCP instead of the broker queueing without bound.
// It must be called with no lock held.
func (s *Store) Throttle() {
	if s.fullSize.Load() < maxPending {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.pending.len() >= maxPending && !s.closed {
		s.full.Wait()
	}
}

// Failed is closed when a commit or an fsync fails (Err says why): from
// then on nothing is made durable, so nothing more is acknowledged.
func (s *Store) Failed() <-chan struct{} { return s.failed }

// Err is why the store failed, or nil.
func (s *Store) Err() error {
	select {
	case <-s.failed:
		return s.err
	default:
		return nil
	}
}

// Stats count what the store has done since Open.
type Stats struct {
	Commits uint64 // transactions
	Syncs   uint64 // fsyncs
	Writes  uint64 // records put or deleted; changes undone within a batch are not
	// Busy is the time spent committing and syncing: near the time
	// elapsed, the disk (or the CPU the committer gets) is what limits.
	Busy time.Duration
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	return Stats{Commits: s.commits.Load(), Syncs: s.syncs.Load(), Writes: s.writes.Load(), Busy: time.Duration(s.busy.Load())}
}

// Close commits what is pending, syncs it and closes the file. Changes
// made after Close are dropped.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.full.Broadcast()
		s.mu.Unlock()
		s.signal()
		<-s.done
		s.closeErr = s.db.Close()
	})
	if err := s.Err(); err != nil {
		return err
	}
	return s.closeErr
}

func (s *Store) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// put records a change; key is the bucket's index, then the key.
func (s *Store) put(bucket byte, key []byte, val []byte, fresh bool) {
	s.change(bucket, key, op{val: val, fresh: fresh})
}

func (s *Store) change(bucket byte, key []byte, o op) {
	k := string(append([]byte{bucket}, key...))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.pending.other == nil {
		s.pending.other = map[string]op{}
	}
	merge(s.pending.other, k, o)
	s.changed()
}

// changeDelivery records a change of the delivery seq.
func (s *Store) changeDelivery(seq uint64, o op) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.pending.deliveries == nil {
		s.pending.deliveries = make(map[uint64]op, s.lastSize)
	}
	merge(s.pending.deliveries, seq, o)
	s.changed()
}

// changed follows a change; s.mu held.
func (s *Store) changed() {
	n := s.pending.len()
	if n == 1 {
		s.signal() // the first change of a batch wakes the committer
	}
	s.fullSize.Store(int64(n))
}

// run commits batches until Close, then commits the last one.
func (s *Store) run() {
	defer close(s.done)
	if s.fsync.Mode == FsyncInterval {
		// Syncs run beside the commits: a sync of an interval's writes
		// takes a while, and commits go on meanwhile.
		stop, stopped := make(chan struct{}), make(chan struct{})
		go s.syncEvery(s.fsync.Interval, stop, stopped)
		defer func() { close(stop); <-stopped }()
	}
	unsynced := false
	var last time.Time
	for {
		<-s.wake
		if s.Err() != nil {
			return // a sync failed: nothing more is made durable
		}
		if s.fsync.Mode != FsyncAlways {
			// Let the batch grow for a moment (see groupWindow).
			if d := groupWindow - time.Since(last); d > 0 {
				time.Sleep(d)
			}
		}
		last = time.Now()
		s.cut.Lock() // no Hold in progress: its changes stay together
		s.mu.Lock()
		next, n, closing := s.pending, s.open, s.closed
		s.pending = batch{}
		s.lastSize = len(next.deliveries)
		s.open++
		s.fullSize.Store(0)
		s.full.Broadcast()
		s.mu.Unlock()
		s.cut.Unlock()
		if next.len() > 0 {
			if err := s.commit(&next); err != nil {
				s.fail(fmt.Errorf("store %s: commit: %w", s.path, err))
				return
			}
			unsynced = s.fsync.Mode != FsyncAlways
		}
		s.durable.Store(n)
		s.notify(n)
		if closing {
			if unsynced && s.fsync.Mode == FsyncInterval {
				s.sync()
			}
			return
		}
	}
}

// commit writes a batch in one transaction, keys in order.
func (s *Store) commit(batch *batch) error {
	keys := make([]string, 0, len(batch.other))
	for k := range batch.other {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	seqs := make([]uint64, 0, len(batch.deliveries))
	for seq := range batch.deliveries {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	start := time.Now()
	defer func() { s.busy.Add(int64(time.Since(start))) }()
	apply := func(b *bolt.Bucket, k []byte, o op) error {
		if o.val == nil {
			return b.Delete(k)
		}
		return b.Put(k, o.val)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, k := range keys {
			if err := apply(tx.Bucket(allBuckets[k[0]]), []byte(k[1:]), batch.other[k]); err != nil {
				return err
			}
		}
		b := tx.Bucket(bucketDeliveries)
		for _, seq := range seqs {
			if err := apply(b, seqKey(seq), batch.deliveries[seq]); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		s.commits.Add(1)
		s.writes.Add(uint64(len(keys) + len(seqs)))
		if s.fsync.Mode == FsyncAlways {
			s.syncs.Add(1)
		}
	}
	return err
}

// syncEvery syncs the file every d while there were commits since the
// last sync, until stop is closed.
func (s *Store) syncEvery(d time.Duration, stop <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	t := time.NewTicker(d)
	defer t.Stop()
	var synced uint64
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		// Every commit counted has written its pages: the sync covers it.
		if c := s.commits.Load(); c != synced && s.sync() {
			synced = c
		}
	}
}

func (s *Store) sync() bool {
	start := time.Now()
	defer func() { s.busy.Add(int64(time.Since(start))) }()
	if err := s.db.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		s.fail(fmt.Errorf("store %s: fsync: %w", s.path, err))
		return false
	}
	s.syncs.Add(1)
	return true
}

// notify runs the callbacks waiting for batches up to n.
func (s *Store) notify(n uint64) {
	s.mu.Lock()
	var due []func()
	keep := s.waiters[:0]
	for _, w := range s.waiters {
		if w.batch <= n {
			due = append(due, w.fn)
		} else {
			keep = append(keep, w)
		}
	}
	clear(s.waiters[len(keep):])
	s.waiters = keep
	s.mu.Unlock()
	for _, fn := range due {
		fn()
	}
}

func (s *Store) fail(err error) {
	s.failOnce.Do(func() { s.doFail(err) })
}

func (s *Store) doFail(err error) {
	s.mu.Lock()
	s.closed = true
	s.waiters = nil
	s.full.Broadcast()
	s.mu.Unlock()
	s.err = err
	close(s.failed)
}
