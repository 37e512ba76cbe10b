package pipeline

import (
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/sink/sinktest"
)

// rowBarrier is a sink whose shard commits each wait until want of them
// are in progress at once (or until a generous limit passes, after which
// none waits: a writer that commits one by one fails the test instead of
// hanging it).
type rowBarrier struct {
	*sinktest.Mem
	want int

	mu      sync.Mutex
	cond    *sync.Cond
	waiting int // commits in progress in the current round
	round   int
	missed  int // commits that gave up waiting
}

func newRowBarrier(want int) *rowBarrier {
	b := &rowBarrier{Mem: sinktest.NewMem(), want: want}
	b.cond = sync.NewCond(&b.mu)
	return b
}

func (b *rowBarrier) Create(key string) (sink.File, error) {
	f, err := b.Mem.Create(key)
	if err != nil || !strings.HasPrefix(key, "c/") {
		return f, err
	}
	return &barrierFile{File: f, b: b}, nil
}

func (b *rowBarrier) Put(key string, data []byte) error { return sink.Put(b, key, data) }

type barrierFile struct {
	sink.File
	b *rowBarrier
}

func (f *barrierFile) Commit() error {
	b := f.b
	b.mu.Lock()
	round := b.round
	b.waiting++
	if b.waiting == b.want || b.missed > 0 {
		b.waiting, b.round = 0, b.round+1
		b.cond.Broadcast()
	} else {
		t := time.AfterFunc(10*time.Second, func() {
			b.mu.Lock()
			b.cond.Broadcast()
			b.mu.Unlock()
		})
		start := time.Now()
		for b.round == round && time.Since(start) < 10*time.Second {
			b.cond.Wait()
		}
		t.Stop()
		if b.round == round {
			b.missed++
			b.waiting--
		}
	}
	b.mu.Unlock()
	return f.File.Commit()
}

// TestRowCommitsTogether: the shard files of a row are committed at
// once, not one after another (an object store's complete of a large
// object takes a while, issue 17), and the store is the same as one
// written inline at depth 1.
func TestRowCommitsTogether(t *testing.T) {
	spec, _ := midSpec(testCodecs[0]) // 4 shards per row, rows of 8 frames
	fb := spec.FrameBytes()
	input := genInput(24*fb, 5) // three whole rows
	ref, err := runWriter(t, spec, input, runOpts{cfg: Config{Depth: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for _, lanes := range []int{1, 2, 8} {
		t.Run(fmt.Sprintf("lanes%d", lanes), func(t *testing.T) {
			b := newRowBarrier(4)
			if _, err := runWriter(t, spec, input, runOpts{cfg: Config{Depth: 3, IOWorkers: lanes, Sink: b}}); err != nil {
				t.Fatal(err)
			}
			if b.missed != 0 {
				t.Errorf("%d shard commits waited in vain for the other shards of their row", b.missed)
			}
			if got := b.Files(); !maps.EqualFunc(got, ref, func(x, y []byte) bool { return string(x) == string(y) }) {
				t.Errorf("store differs from the one written at depth 1")
			}
		})
	}
}
