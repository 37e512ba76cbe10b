package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// pieceWriter records the size of every Write.
type pieceWriter struct {
	bytes.Buffer
	sizes []int
}

func (w *pieceWriter) Write(p []byte) (int, error) {
	w.sizes = append(w.sizes, len(p))
	return w.Buffer.Write(p)
}

func TestCopyInput(t *testing.T) {
	src := randomBytes(100_003, 9)
	for _, size := range []int{1, 7, 4093, 1 << 20} {
		var w pieceWriter
		n, err := copyInput(context.Background(), &w, iotestHalfReader{bytes.NewReader(src)}, size, true)
		if err != nil || n != int64(len(src)) || !bytes.Equal(w.Bytes(), src) {
			t.Fatalf("size %d: copied %d, %v; output equal: %v", size, n, err, bytes.Equal(w.Bytes(), src))
		}
		// Every piece but the last is full, however the reader splits.
		for i, s := range w.sizes[:len(w.sizes)-1] {
			if s != size {
				t.Fatalf("size %d: piece %d is %d bytes", size, i, s)
			}
		}
	}
}

// iotestHalfReader returns at most half of what was asked, like a pipe.
type iotestHalfReader struct{ r io.Reader }

func (h iotestHalfReader) Read(p []byte) (int, error) { return h.r.Read(p[:(len(p)+1)/2]) }

// blockingReader never returns, like an idle pipe.
type blockingReader struct{}

func (blockingReader) Read(p []byte) (int, error) { select {} }

func TestCopyInputCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := copyInput(ctx, io.Discard, blockingReader{}, 1024, false)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("copyInput returned %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("copyInput did not return after cancel while its read was blocked")
	}
}

type failReader struct{}

func (failReader) Read(p []byte) (int, error) { return 3, errors.New("disk on fire") }

type failWriter struct{}

func (failWriter) Write(p []byte) (int, error) { return 0, errors.New("sink full") }

func TestCopyInputErrors(t *testing.T) {
	var w bytes.Buffer
	n, err := copyInput(context.Background(), &w, failReader{}, 16, false)
	var re *readError
	if !errors.As(err, &re) || n != 3 || w.Len() != 3 {
		t.Errorf("read failure: n=%d err=%v; want the 3 bytes read, then a readError", n, err)
	}
	_, err = copyInput(context.Background(), failWriter{}, bytes.NewReader(make([]byte, 40)), 16, false)
	if err == nil || errors.As(err, &re) || err.Error() != "sink full" {
		t.Errorf("write failure: %v; want the writer's error as is", err)
	}
}
