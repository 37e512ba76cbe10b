package sinktest

import (
	"errors"
	"sync"

	"github.com/zwrite/zwrite/internal/sink"
)

// File states, moved once from open to committed or aborted.
const (
	fileOpen int32 = iota
	fileCommitted
	fileAborted
)

var (
	errAborted   = errors.New("file was aborted")
	errCommitted = errors.New("file was already committed")
)

// Mem keeps a store in memory, for tests: Files returns what was committed.
// It is safe for concurrent use, as sink.Sink requires.
type Mem struct {
	mu    sync.Mutex
	files map[string][]byte
	temps int
}

// NewMem returns an empty in-memory sink.
func NewMem() *Mem { return &Mem{files: map[string][]byte{}} }

// Files returns a copy of every committed file by key.
func (m *Mem) Files() map[string][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := make(map[string][]byte, len(m.files))
	for k, v := range m.files {
		c[k] = append([]byte(nil), v...)
	}
	return c
}

// Temps is the number of files created and neither committed nor aborted.
func (m *Mem) Temps() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.temps
}

// Create implements Sink.
func (m *Mem) Create(key string) (sink.File, error) {
	if err := sink.CheckKey(key); err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.temps++
	m.mu.Unlock()
	return &memFile{m: m, key: key}, nil
}

// Put implements Sink.
func (m *Mem) Put(key string, data []byte) error { return sink.Put(m, key, data) }

// Close implements Sink. Uncommitted files simply vanish with their memory.
func (m *Mem) Close() error { return nil }

type memFile struct {
	m     *Mem
	key   string
	mu    sync.Mutex // Abort may come from another goroutine
	buf   []byte
	state int32
}

func (f *memFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state != fileOpen {
		if f.state == fileAborted {
			return 0, errAborted
		}
		return 0, errCommitted
	}
	f.buf = append(f.buf, p...)
	return len(p), nil
}

func (f *memFile) Commit() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch f.state {
	case fileCommitted:
		return nil
	case fileAborted:
		return errAborted
	}
	f.state = fileCommitted
	f.m.mu.Lock()
	f.m.files[f.key] = f.buf
	f.m.temps--
	f.m.mu.Unlock()
	f.buf = nil
	return nil
}

func (f *memFile) Abort() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state != fileOpen {
		return nil
	}
	f.state = fileAborted
	f.buf = nil
	f.m.mu.Lock()
	f.m.temps--
	f.m.mu.Unlock()
	return nil
}
