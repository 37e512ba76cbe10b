package sinktest

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/sink"
)

func TestMem(t *testing.T) {
	m := NewMem()
	f, _ := m.Create("a/b")
	f.Write([]byte("12"))
	f.Write([]byte("3"))
	if m.Temps() != 1 {
		t.Errorf("Temps = %d, want 1", m.Temps())
	}
	f.Commit()
	g, _ := m.Create("a/c")
	g.Write([]byte("zz"))
	g.Abort()
	m.Put("zarr.json", []byte("{}"))
	files := m.Files()
	if len(files) != 2 || string(files["a/b"]) != "123" || m.Temps() != 0 {
		t.Errorf("files %v temps %d", files, m.Temps())
	}
}

func TestSlow(t *testing.T) {
	s := NewSlow(NewMem(), 1<<20) // 1 MiB/s
	f, _ := s.Create("k")
	start := time.Now()
	for i := 0; i < 4; i++ {
		f.Write(make([]byte, 64<<10))
	}
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Errorf("256 KiB at 1 MiB/s took %v, want >= 250ms", el)
	}
	// An abort interrupts a long write.
	g, _ := s.Create("k2")
	done := make(chan error)
	go func() { _, err := g.Write(make([]byte, 10<<20)); done <- err }()
	time.Sleep(20 * time.Millisecond)
	g.Abort()
	select {
	case err := <-done:
		if err == nil {
			t.Error("interrupted write returned no error")
		}
	case <-time.After(time.Second):
		t.Fatal("Abort did not interrupt a slow write")
	}
}

func TestStalled(t *testing.T) {
	tests := []struct {
		name    string
		unblock func(s *Stalled, f sink.File)
		wantErr bool
	}{
		{"release", func(s *Stalled, f sink.File) { s.Release() }, false},
		{"abort", func(s *Stalled, f sink.File) { f.Abort() }, true},
		{"close", func(s *Stalled, f sink.File) { s.Close() }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMem()
			s := NewStalled(m, 10, func(k string) bool { return strings.HasPrefix(k, "c/") })
			if err := s.Put("zarr.json", make([]byte, 100)); err != nil {
				t.Fatal("unmatched key stalled:", err)
			}
			f, _ := s.Create("c/0")
			if n, err := f.Write(make([]byte, 5)); n != 5 || err != nil {
				t.Fatal(n, err)
			}
			done := make(chan error)
			go func() {
				_, err := f.Write(make([]byte, 20))
				if err == nil {
					err = f.Commit()
				}
				done <- err
			}()
			select {
			case <-s.Stalling():
			case <-time.After(time.Second):
				t.Fatal("write did not stall")
			}
			select {
			case <-done:
				t.Fatal("stalled write returned early")
			case <-time.After(20 * time.Millisecond):
			}
			tc.unblock(s, f)
			select {
			case err := <-done:
				if (err != nil) != tc.wantErr {
					t.Errorf("err = %v, wantErr %v", err, tc.wantErr)
				}
			case <-time.After(time.Second):
				t.Fatal("stalled write not released")
			}
			if !tc.wantErr && len(m.Files()["c/0"]) != 25 {
				t.Errorf("released file has %d bytes, want 25", len(m.Files()["c/0"]))
			}
		})
	}
}

func TestFailing(t *testing.T) {
	m := NewMem()
	s := NewFailing(m, 10)
	f, _ := s.Create("c/1/2")
	if _, err := f.Write(make([]byte, 6)); err != nil {
		t.Fatal(err)
	}
	n, err := f.Write(make([]byte, 6))
	if n != 4 || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("n=%d err=%v, want 4 and ENOSPC", n, err)
	}
	f.Abort()
	if m.Temps() != 0 {
		t.Error("temp left after Abort")
	}
}

func TestRecording(t *testing.T) {
	r := NewRecording(NewMem())
	f, _ := r.Create("c/0")
	f.Write([]byte("abc"))
	f.Commit()
	g, _ := r.Create("c/1")
	g.Abort()
	var got []string
	for _, e := range r.Events() {
		got = append(got, e.String())
	}
	want := "create c/0,write c/0 3,commit c/0,create c/1,abort c/1"
	if strings.Join(got, ",") != want {
		t.Errorf("events %q, want %q", strings.Join(got, ","), want)
	}
}
