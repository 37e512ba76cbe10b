package sink

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// LockName is the lock file inside a store being written. Readers ignore
// it (it is no chunk key); a clean end of the run removes it.
const LockName = ".zwrite-lock"

// RemovingName marks a store an --overwrite run is removing on a backend
// without rename (object storage): written before its first zarr.json
// goes, removed after its last key. A node that holds it and no
// zarr.json is a removal that was cut short (a crash, a failed delete):
// the next run may finish it rather than refuse a node that is no longer
// a Zarr store.
const RemovingName = ".zwrite-removing"

// LockInfo is what a lock file records about its writer.
type LockInfo struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Start   time.Time `json:"start"`
	Command string    `json:"command,omitempty"`
}

func (l LockInfo) String() string {
	if l.PID == 0 && l.Host == "" {
		return "an unknown writer (the lock file records none)"
	}
	s := fmt.Sprintf("pid %d on host %s", l.PID, l.Host)
	if !l.Start.IsZero() {
		s += ", started " + l.Start.Local().Format("2006-01-02 15:04:05")
	}
	return s
}

// LockedError is returned when another writer holds the store's lock.
type LockedError struct {
	Store  string
	Holder LockInfo
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("%s is being written by another zwrite (%s); one writer per store: wait for it to finish or choose another output", e.Store, e.Holder)
}

// ForeignLockError is returned when the store's lock was left by a writer
// on another host: it may still be running there (over a network file
// system), so it is not taken over unless Options.BreakLock says so.
type ForeignLockError struct {
	Store  string
	Holder LockInfo
	Path   string // the lock file
}

func (e *ForeignLockError) Error() string {
	return fmt.Sprintf("%s is locked by a writer on another host (%s); if no zwrite is writing it there, clear the lock (or remove %s)", e.Store, e.Holder, e.Path)
}

// lockHost is this machine's name as locks record it.
func lockHost() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown"
	}
	return h
}

func readLockInfo(b []byte) LockInfo {
	var li LockInfo
	_ = json.Unmarshal(b, &li) // a garbled lock still locks; it just tells less
	return li
}

func (l LockInfo) marshal() []byte {
	b, _ := json.Marshal(l)
	return append(b, '\n')
}

// selfInfo describes this process for its lock file.
func selfInfo() LockInfo {
	cmd := filepath.Base(os.Args[0])
	if len(os.Args) > 1 {
		cmd += " " + os.Args[1]
	}
	return LockInfo{PID: os.Getpid(), Host: lockHost(), Start: time.Now().UTC().Truncate(time.Second), Command: cmd}
}

// staleNote is the warning printed when a dead writer's lock is taken over.
func staleNote(store string, old LockInfo, foreign bool) string {
	if foreign {
		return fmt.Sprintf("%s: broke the lock of %s, as asked", store, old)
	}
	return fmt.Sprintf("%s: took over the lock left by %s, which is no longer running (a crashed or killed run; `zwrite verify %s` checks what it left)", store, old, store)
}

// looksLikeZwrite reports whether pid is a live process whose command line
// names zwrite: a lock file whose flock is free but whose writer still
// runs (a file system without working flock) must not be taken over.
func looksLikeZwrite(pid int) bool {
	if pid <= 0 || pid == os.Getpid() {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(b), "zwrite")
}
