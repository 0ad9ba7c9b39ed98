package main

import (
	"errors"
	"flag"

	"github.com/mqttbench/mqttbench/store"
)

// storeFlags are the broker's durability flags.
type storeFlags struct {
	dir   *string
	fsync *string
	mode  store.Fsync
}

func addStoreFlags(fs *flag.FlagSet) *storeFlags {
	return &storeFlags{
		dir: fs.String("data-dir", "", "keep sessions, their queued and in-flight QoS 1/2 messages, retained messages and wills in this directory, across restarts and crashes (default: in memory only)"),
		fsync: fs.String("fsync", "always", "with --data-dir: always (acknowledge once on disk), interval=DURATION such as interval=100ms "+
			"(acknowledge once written, fsync every DURATION: a machine crash, not a broker crash, can lose that much) or never (the OS decides)"),
	}
}

// check reads --fsync, which needs --data-dir.
func (f *storeFlags) check(fs *flag.FlagSet) error {
	mode, err := store.ParseFsync(*f.fsync)
	if err != nil {
		return errors.New("--" + err.Error())
	}
	f.mode = mode
	set := false
	fs.Visit(func(fl *flag.Flag) { set = set || fl.Name == "fsync" })
	if set && *f.dir == "" {
		return errors.New("--fsync needs --data-dir")
	}
	return nil
}

// open opens the store of --data-dir; nil without one.
func (f *storeFlags) open() (*store.Store, error) {
	if *f.dir == "" {
		return nil, nil
	}
	return store.Open(*f.dir, store.Options{Fsync: f.mode})
}

// storeHint is what to do when the store does not open.
func storeHint(err error) string {
	if errors.Is(err, store.ErrInUse) {
		return "stop the broker that uses this --data-dir, or give another"
	}
	return "move the data directory aside (or restore it from a backup) and start again"
}
