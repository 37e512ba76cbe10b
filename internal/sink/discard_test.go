package sink

import "testing"

func TestDiscard(t *testing.T) {
	d := NewDiscard()
	h, _ := d.Create("x")
	h.Write(make([]byte, 10))
	h.Commit()
	d.Put("y", make([]byte, 5))
	if d.Bytes() != 15 || d.Files() != 2 {
		t.Errorf("discard bytes %d files %d, want 15 and 2", d.Bytes(), d.Files())
	}
}
