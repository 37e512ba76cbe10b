package sink

import "sync/atomic"

// Discard drops every byte and counts them, for benchmarks.
type Discard struct {
	bytes, files atomic.Int64
}

// NewDiscard returns a discard sink.
func NewDiscard() *Discard { return &Discard{} }

// Bytes is the number of bytes written to committed or open files.
func (d *Discard) Bytes() int64 { return d.bytes.Load() }

// Files is the number of files committed.
func (d *Discard) Files() int64 { return d.files.Load() }

// Create implements Sink.
func (d *Discard) Create(key string) (File, error) { return &discardFile{d: d}, nil }

// Put implements Sink.
func (d *Discard) Put(key string, data []byte) error {
	d.bytes.Add(int64(len(data)))
	d.files.Add(1)
	return nil
}

// Close implements Sink.
func (d *Discard) Close() error { return nil }

type discardFile struct {
	d    *Discard
	done atomic.Bool
}

func (f *discardFile) Write(p []byte) (int, error) {
	f.d.bytes.Add(int64(len(p)))
	return len(p), nil
}

func (f *discardFile) Commit() error {
	if f.done.CompareAndSwap(false, true) {
		f.d.files.Add(1)
	}
	return nil
}

func (f *discardFile) Abort() error { f.done.Store(true); return nil }
