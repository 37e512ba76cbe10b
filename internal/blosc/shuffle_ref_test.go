package blosc

// Reference filters: the plain definitions, one byte (or bit) at a time,
// that the fast shuffle paths are checked against.

// refShuffle is c-blosc's shuffle_generic: out[j*n+i] = in[i*ts+j] for
// n = len/ts elements, the len%ts trailing bytes copied as is.
func refShuffle(out, in []byte, ts int) {
	n := len(in) / ts
	for j := 0; j < ts; j++ {
		for i := 0; i < n; i++ {
			out[j*n+i] = in[i*ts+j]
		}
	}
	copy(out[n*ts:], in[n*ts:])
}

// refUnshuffle is c-blosc's unshuffle_generic.
func refUnshuffle(out, in []byte, ts int) {
	n := len(in) / ts
	for j := 0; j < ts; j++ {
		for i := 0; i < n; i++ {
			out[i*ts+j] = in[j*n+i]
		}
	}
	copy(out[n*ts:], in[n*ts:])
}

// refBitTranspose is the bit shuffle by its definition: bit k of byte j of
// element i moves to bit (j*8+k)*n + i, bits numbered from the least
// significant bit of byte 0; blocks whose element count is not a multiple
// of 8 are copied unchanged, trailing bytes copied as is.
func refBitTranspose(out, in []byte, ts int, inverse bool) {
	n := len(in) / ts
	copy(out, in)
	if n%8 != 0 {
		return
	}
	clear(out[:n*ts])
	for i := 0; i < n; i++ {
		for j := 0; j < ts; j++ {
			for k := 0; k < 8; k++ {
				a, b := (i*ts+j)*8+k, (j*8+k)*n+i
				if inverse {
					a, b = b, a
				}
				out[b/8] |= (in[a/8] >> (a % 8) & 1) << (b % 8)
			}
		}
	}
}
