package blosc

import "encoding/binary"

// Byte shuffle, word at a time.
//
// c-blosc's byte shuffle is a transpose of an n x ts byte matrix (n
// elements of ts bytes) into ts byte planes of n bytes; the len%ts bytes
// after the last whole element are copied as is. Moving one byte per
// iteration costs more than LZ4 itself, so typesizes 2, 4 and 8 (and the
// 8-byte column groups of larger ones) move 8 elements per iteration in
// 64-bit words: load whole words, rearrange their bytes with delta swaps
// (the shifts-and-masks matrix transpose of Hacker's Delight §7-3), store
// whole words. Element counts that are not a multiple of 8, the columns of
// a typesize that is not a multiple of 8, and typesizes 3, 5, 6, 7 go
// through the plain byte loop, which is also what the tests compare with.

var le = binary.LittleEndian

// swapIn exchanges, inside x, the bits selected by m<<d with those
// selected by m (a delta swap).
func swapIn(x uint64, d uint, m uint64) uint64 {
	t := (x ^ (x >> d)) & m
	return x ^ t ^ (t << d)
}

// swapAcross exchanges the bits of a selected by m<<d with the bits of b
// selected by m: one step of a block transpose across words.
func swapAcross(a, b uint64, d uint, m uint64) (uint64, uint64) {
	t := ((a >> d) ^ b) & m
	return a ^ (t << d), b ^ t
}

// zip interleaves the bytes of the two halves of x:
// [a0 a1 a2 a3 b0 b1 b2 b3] -> [a0 b0 a1 b1 a2 b2 a3 b3] (byte 0 first).
func zip(x uint64) uint64 {
	x = swapIn(x, 16, 0x00000000FFFF0000)
	return swapIn(x, 8, 0x0000FF000000FF00)
}

// unzip inverts zip: even bytes to the low half, odd bytes to the high.
func unzip(x uint64) uint64 {
	x = swapIn(x, 8, 0x0000FF000000FF00)
	return swapIn(x, 16, 0x00000000FFFF0000)
}

// transpose4x16 transposes the 4x4 matrix of 16-bit units held in four
// words (word r = row r, unit c = column c). It is its own inverse.
func transpose4x16(w0, w1, w2, w3 uint64) (uint64, uint64, uint64, uint64) {
	w0, w2 = swapAcross(w0, w2, 32, 0x00000000FFFFFFFF)
	w1, w3 = swapAcross(w1, w3, 32, 0x00000000FFFFFFFF)
	w0, w1 = swapAcross(w0, w1, 16, 0x0000FFFF0000FFFF)
	w2, w3 = swapAcross(w2, w3, 16, 0x0000FFFF0000FFFF)
	return w0, w1, w2, w3
}

// transpose8x8Bytes transposes the 8x8 byte matrix w (w[r] = row r, byte
// c = column c). It is its own inverse.
func transpose8x8Bytes(w *[8]uint64) {
	w[0], w[4] = swapAcross(w[0], w[4], 32, 0x00000000FFFFFFFF)
	w[1], w[5] = swapAcross(w[1], w[5], 32, 0x00000000FFFFFFFF)
	w[2], w[6] = swapAcross(w[2], w[6], 32, 0x00000000FFFFFFFF)
	w[3], w[7] = swapAcross(w[3], w[7], 32, 0x00000000FFFFFFFF)
	w[0], w[2] = swapAcross(w[0], w[2], 16, 0x0000FFFF0000FFFF)
	w[1], w[3] = swapAcross(w[1], w[3], 16, 0x0000FFFF0000FFFF)
	w[4], w[6] = swapAcross(w[4], w[6], 16, 0x0000FFFF0000FFFF)
	w[5], w[7] = swapAcross(w[5], w[7], 16, 0x0000FFFF0000FFFF)
	w[0], w[1] = swapAcross(w[0], w[1], 8, 0x00FF00FF00FF00FF)
	w[2], w[3] = swapAcross(w[2], w[3], 8, 0x00FF00FF00FF00FF)
	w[4], w[5] = swapAcross(w[4], w[5], 8, 0x00FF00FF00FF00FF)
	w[6], w[7] = swapAcross(w[6], w[7], 8, 0x00FF00FF00FF00FF)
}

// shuffle is blosc's byte shuffle of one block: out[j*n+i] = in[i*ts+j]
// for n = len/ts elements; the len%ts trailing bytes are copied as is.
// out must be at least as long as in.
func shuffle(out, in []byte, ts int) {
	n := len(in) / ts
	out = out[:len(in)]
	m, cols := 0, 0 // elements and columns done word-wide
	switch {
	case ts == 1:
		m, cols = n, 1
		copy(out, in[:n])
	case ts == 2:
		m, cols = shuffle2(out, in, n, shuffle2Asm(out, in, n)), 2
	case ts == 4:
		m, cols = shuffle4(out, in, n, shuffle4Asm(out, in, n)), 4
	case ts >= 8:
		m, cols = shuffle8(out, in, n, ts, shuffle8Asm(out, in, n, ts)), ts&^7
	}
	shuffleBytes(out, in, n, ts, m, 0, cols)
	shuffleBytes(out, in, n, ts, 0, cols, ts)
	copy(out[n*ts:], in[n*ts:])
}

// shuffleBytes is the byte loop over elements [i0, n) and columns [j0, j1).
func shuffleBytes(out, in []byte, n, ts, i0, j0, j1 int) {
	for j := j0; j < j1; j++ {
		o := out[j*n : (j+1)*n]
		for i := i0; i < n; i++ {
			o[i] = in[i*ts+j]
		}
	}
}

// shuffle2 shuffles elements [i0, n&^7) of typesize 2 (i0 a multiple of 8)
// and returns n&^7: 16 input bytes, two unzips, one word to each plane.
func shuffle2(out, in []byte, n, i0 int) int {
	m := n &^ 7
	o0, o1 := out[:m], out[n:n+m]
	for i := i0; i < m; i += 8 {
		s := in[2*i : 2*i+16]
		x := unzip(le.Uint64(s))
		y := unzip(le.Uint64(s[8:]))
		le.PutUint64(o0[i:], x&0xFFFFFFFF|y<<32)
		le.PutUint64(o1[i:], x>>32|y&^0xFFFFFFFF)
	}
	return m
}

// shuffle4 does the same for typesize 4: each word holds two elements;
// zip pairs up their bytes, a 4x4 transpose of 16-bit units then gives one
// word per plane.
func shuffle4(out, in []byte, n, i0 int) int {
	m := n &^ 7
	o0, o1, o2, o3 := out[:m], out[n:n+m], out[2*n:2*n+m], out[3*n:3*n+m]
	for i := i0; i < m; i += 8 {
		s := in[4*i : 4*i+32]
		w0, w1, w2, w3 := transpose4x16(zip(le.Uint64(s)), zip(le.Uint64(s[8:])),
			zip(le.Uint64(s[16:])), zip(le.Uint64(s[24:])))
		le.PutUint64(o0[i:], w0)
		le.PutUint64(o1[i:], w1)
		le.PutUint64(o2[i:], w2)
		le.PutUint64(o3[i:], w3)
	}
	return m
}

// shuffle8 handles elements [i0, n&^7) of typesize 8 and of the first
// ts&^7 columns of larger ones: 8 elements by 8 bytes is an 8x8 byte
// transpose.
func shuffle8(out, in []byte, n, ts, i0 int) int {
	m := n &^ 7
	var w [8]uint64
	for i := i0; i < m; i += 8 {
		for j := 0; j+8 <= ts; j += 8 {
			s := in[i*ts+j:]
			for r := range w {
				w[r] = le.Uint64(s[r*ts:])
			}
			transpose8x8Bytes(&w)
			for r := range w {
				le.PutUint64(out[(j+r)*n+i:], w[r])
			}
		}
	}
	return m
}

// unshuffle inverts shuffle: out[i*ts+j] = in[j*n+i].
func unshuffle(out, in []byte, ts int) {
	n := len(in) / ts
	out = out[:len(in)]
	m, cols := 0, 0
	switch {
	case ts == 1:
		m, cols = n, 1
		copy(out, in[:n])
	case ts == 2:
		m, cols = unshuffle2(out, in, n, unshuffle2Asm(out, in, n)), 2
	case ts == 4:
		m, cols = unshuffle4(out, in, n, unshuffle4Asm(out, in, n)), 4
	case ts >= 8:
		m, cols = unshuffle8(out, in, n, ts, unshuffle8Asm(out, in, n, ts)), ts&^7
	}
	unshuffleBytes(out, in, n, ts, m, 0, cols)
	unshuffleBytes(out, in, n, ts, 0, cols, ts)
	copy(out[n*ts:], in[n*ts:])
}

func unshuffleBytes(out, in []byte, n, ts, i0, j0, j1 int) {
	for j := j0; j < j1; j++ {
		s := in[j*n : (j+1)*n]
		for i := i0; i < n; i++ {
			out[i*ts+j] = s[i]
		}
	}
}

func unshuffle2(out, in []byte, n, i0 int) int {
	m := n &^ 7
	p0, p1 := in[:m], in[n:n+m]
	for i := i0; i < m; i += 8 {
		a, b := le.Uint64(p0[i:]), le.Uint64(p1[i:])
		o := out[2*i : 2*i+16]
		le.PutUint64(o, zip(a&0xFFFFFFFF|b<<32))
		le.PutUint64(o[8:], zip(a>>32|b&^0xFFFFFFFF))
	}
	return m
}

func unshuffle4(out, in []byte, n, i0 int) int {
	m := n &^ 7
	p0, p1, p2, p3 := in[:m], in[n:n+m], in[2*n:2*n+m], in[3*n:3*n+m]
	for i := i0; i < m; i += 8 {
		w0, w1, w2, w3 := transpose4x16(le.Uint64(p0[i:]), le.Uint64(p1[i:]),
			le.Uint64(p2[i:]), le.Uint64(p3[i:]))
		o := out[4*i : 4*i+32]
		le.PutUint64(o, unzip(w0))
		le.PutUint64(o[8:], unzip(w1))
		le.PutUint64(o[16:], unzip(w2))
		le.PutUint64(o[24:], unzip(w3))
	}
	return m
}

func unshuffle8(out, in []byte, n, ts, i0 int) int {
	m := n &^ 7
	var w [8]uint64
	for i := i0; i < m; i += 8 {
		for j := 0; j+8 <= ts; j += 8 {
			for r := range w {
				w[r] = le.Uint64(in[(j+r)*n+i:])
			}
			transpose8x8Bytes(&w)
			o := out[i*ts+j:]
			for r := range w {
				le.PutUint64(o[r*ts:], w[r])
			}
		}
	}
	return m
}

// bitTranspose is blosc1's bit shuffle of one block (bitshuffle's
// bshuf_trans_bit_elem), or its inverse. With n = len/ts elements, bit k
// of byte j of element i moves to bit i%8 of byte (j*8+k)*n/8 + i/8: one
// row of n bits per bit of the element. As c-blosc 1.x does for its format
// version 2, a block whose element count is not a multiple of 8 is copied
// unchanged, and bytes past the last whole element are copied as is.
func bitTranspose(out, in []byte, ts int, inverse bool) {
	n := len(in) / ts
	if n%8 != 0 {
		copy(out, in)
		return
	}
	nbr := n / 8 // bytes per bit row
	done := 0    // bytes of each row already written
	if ts <= bitWideMaxTS {
		done = bitTransposeWide(out, in, n, ts, inverse)
	}
	for ii := done; ii < nbr; ii++ {
		for jj := 0; jj < ts; jj++ {
			// Eight bytes (byte jj of elements 8ii..8ii+7, or the eight
			// bit rows of byte jj at column ii) as an 8x8 bit matrix.
			var x uint64
			for kk := 0; kk < 8; kk++ {
				if inverse {
					x |= uint64(in[jj*n+kk*nbr+ii]) << (8 * kk)
				} else {
					x |= uint64(in[(ii*8+kk)*ts+jj]) << (8 * kk)
				}
			}
			x = transpose8x8(x)
			for kk := 0; kk < 8; kk++ {
				if inverse {
					out[(ii*8+kk)*ts+jj] = byte(x >> (8 * kk))
				} else {
					out[jj*n+kk*nbr+ii] = byte(x >> (8 * kk))
				}
			}
		}
	}
	copy(out[n*ts:], in[n*ts:])
}

// bitWideMaxTS is the largest typesize bitTransposeWide takes: its scratch
// of 64 elements lives on the stack.
const bitWideMaxTS = 32

// bitTransposeWide does the bit transpose 64 elements at a time, for the
// first n&^63 elements, and returns the row bytes it wrote (n/64*8). The
// 64 elements are byte-shuffled into a stack buffer (fast kernels), each
// 8-byte group of a byte plane is bit-transposed as one word, and an 8x8
// byte transpose of eight such words gives 8 bytes of each of the 8 bit
// rows, stored as whole words. The inverse runs the same steps backwards.
func bitTransposeWide(out, in []byte, n, ts int, inverse bool) int {
	nbr := n / 8
	var buf [64 * bitWideMaxTS]byte
	blk := buf[:64*ts]
	var w [8]uint64
	for ii := 0; ii+8 <= nbr; ii += 8 {
		elems := in[ii*8*ts : (ii+8)*8*ts]
		if inverse {
			elems = out[ii*8*ts : (ii+8)*8*ts]
		} else {
			shuffle(blk, elems, ts)
		}
		for jj := 0; jj < ts; jj++ {
			p := blk[jj*64 : jj*64+64]
			if inverse {
				for kk := range w {
					w[kk] = le.Uint64(in[jj*n+kk*nbr+ii:])
				}
				transpose8x8Bytes(&w)
				for m := range w {
					le.PutUint64(p[8*m:], transpose8x8(w[m]))
				}
				continue
			}
			for m := range w {
				w[m] = transpose8x8(le.Uint64(p[8*m:]))
			}
			transpose8x8Bytes(&w)
			for kk := range w {
				le.PutUint64(out[jj*n+kk*nbr+ii:], w[kk])
			}
		}
		if inverse {
			unshuffle(elems, blk, ts)
		}
	}
	return nbr &^ 7
}

// transpose8x8 transposes the 8x8 bit matrix x (byte r = row r, bit c =
// column c), bitshuffle's TRANS_BIT_8X8. It is its own inverse.
func transpose8x8(x uint64) uint64 {
	t := (x ^ (x >> 7)) & 0x00AA00AA00AA00AA
	x = x ^ t ^ (t << 7)
	t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCC
	x = x ^ t ^ (t << 14)
	t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0
	return x ^ t ^ (t << 28)
}
