package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// create makes a new, empty store at path: built under another name and
// renamed into place once synced, so a file at path is always a whole
// store, and an empty or partial one is damage, never a fresh start.
func create(path string) error {
	tmp := path + ".new"
	os.Remove(tmp) //nolint:errcheck // left by a crash during a create
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put([]byte("format"), newWriter(0).done())
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("store %s: creating it: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// precheck finds, before bbolt maps the file, a file shorter than its
// newest valid meta page says it is (bbolt would read past the end of it).
// It reads bbolt's meta page layout (format version 2, the machine's byte
// order, little-endian here): page header 16 bytes, then magic, version,
// page size, flags, root bucket (16 bytes), freelist page, page count,
// transaction id and an FNV-64a checksum of the fields before it.
func precheck(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("store %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("store %s: %w", path, err)
	}
	if fi.Size() == 0 {
		return fmt.Errorf("store %s is damaged: the file is empty", path)
	}
	type meta struct{ pageSize, pages, txid uint64 }
	read := func(off int64) (meta, bool) {
		var b [16 + 64]byte
		if _, err := f.ReadAt(b[:], off); err != nil && !errors.Is(err, io.EOF) {
			return meta{}, false
		}
		m := b[16:]
		h := fnv.New64a()
		h.Write(m[:56]) //nolint:errcheck
		if binary.LittleEndian.Uint32(m[0:]) != 0xED0CDAED || binary.LittleEndian.Uint64(m[56:]) != h.Sum64() {
			return meta{}, false
		}
		return meta{uint64(binary.LittleEndian.Uint32(m[8:])), binary.LittleEndian.Uint64(m[40:]), binary.LittleEndian.Uint64(m[48:])}, true
	}
	m0, ok0 := read(0)
	best, ok := m0, ok0
	if ok0 {
		if m1, ok1 := read(int64(m0.pageSize)); ok1 && m1.txid > m0.txid {
			best = m1
		}
	} else {
		// The first meta page is bad: the second is where the page size
		// says, commonly 4 KiB.
		best, ok = read(4096)
	}
	if !ok {
		return nil // bbolt says what is wrong
	}
	if need := best.pages * best.pageSize; uint64(fi.Size()) < need {
		return fmt.Errorf("store %s is damaged: the file is %d bytes long, its pages reach %d (truncated?)", path, fi.Size(), need)
	}
	return nil
}
