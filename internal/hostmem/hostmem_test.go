package hostmem

import "testing"

func TestAllocTouchFree(t *testing.T) {
	for _, n := range []int{1, page - 1, page, 3*page + 5, 5 << 20} {
		b, err := Alloc(n)
		if err != nil {
			t.Fatalf("Alloc(%d): %v", n, err)
		}
		if len(b) != n {
			t.Fatalf("Alloc(%d): %d bytes", n, len(b))
		}
		Touch(b)
		for i := range b {
			if b[i] != 0 {
				t.Fatalf("Alloc(%d): byte %d is %d, want 0", n, i, b[i])
			}
			b[i] = byte(i)
		}
		for i := range b {
			if b[i] != byte(i) {
				t.Fatalf("Alloc(%d): byte %d lost its value", n, i)
			}
		}
		if err := Free(b); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []int{0, -1} {
		if _, err := Alloc(n); err == nil {
			t.Errorf("Alloc(%d): no error", n)
		}
	}
	if err := Free(nil); err != nil {
		t.Errorf("Free(nil): %v", err)
	}
}
