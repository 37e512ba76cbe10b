package zstdenc

import "math/bits"

// FSE (tANS) encoding tables for the sequence codes, built from a
// normalized distribution the way RFC 8878 §4.1.1 says a decoder builds
// its table, so that encoder and decoder share the state machine.

// fseTable is the encoding side of one FSE table.
type fseTable struct {
	log        uint8
	stateTable [1 << maxFSELog]uint16
	symbolTT   [64]symbolTransform // maxFSESymbols used; 64 so a mask bounds the index
}

// symbolTransform is FSE's per-symbol encoding rule: with state value x
// (tableSize <= x < 2*tableSize), emit nbBits = (x + deltaNbBits) >> 16
// low bits of x, then the next state is stateTable[(x >> nbBits) +
// deltaFindState].
type symbolTransform struct {
	deltaNbBits    uint32
	deltaFindState int32
}

const (
	maxFSELog     = 9
	maxFSESymbols = 53
)

// build fills t for the normalized counts norm (sum 1 << log; -1 marks a
// "less than 1" symbol that gets one cell at the end of the table).
func (t *fseTable) build(norm []int16, log uint8) {
	size := 1 << log
	mask := size - 1
	step := (size >> 1) + (size >> 3) + 3
	var symbolAt [1 << maxFSELog]uint8
	var cumul [maxFSESymbols + 1]int
	high := size - 1
	for s, n := range norm {
		if n == -1 {
			cumul[s+1] = cumul[s] + 1
			symbolAt[high] = uint8(s)
			high--
		} else {
			cumul[s+1] = cumul[s] + int(n)
		}
	}
	// Spread the symbols over the table (RFC 8878 §4.1.1).
	pos := 0
	for s, n := range norm {
		for i := 0; i < int(n); i++ {
			symbolAt[pos] = uint8(s)
			pos = (pos + step) & mask
			for pos > high {
				pos = (pos + step) & mask
			}
		}
	}
	// States by symbol, in table order.
	next := cumul
	for u := 0; u < size; u++ {
		s := symbolAt[u]
		t.stateTable[next[s]] = uint16(size + u)
		next[s]++
	}
	total := 0
	for s, n := range norm {
		switch n {
		case 0:
		case -1, 1:
			t.symbolTT[s] = symbolTransform{uint32(log)<<16 - uint32(size), int32(total - 1)}
			total++
		default:
			maxBitsOut := uint32(log) - uint32(bits.Len32(uint32(n-1))-1)
			minStatePlus := uint32(n) << maxBitsOut
			t.symbolTT[s] = symbolTransform{maxBitsOut<<16 - minStatePlus, int32(total - int(n))}
			total += int(n)
		}
	}
	t.log = log
}

// rleTable stands for RLE mode: all zero, every symbol's state takes no
// bits at all (nbBits and the next state both come out 0), so the coding
// loop needs no branch for it.
var rleTable fseTable

// initState is the state that starts on symbol s (the last one encoded,
// the first the decoder reads), writing no bits.
func (t *fseTable) initState(s uint8) uint32 {
	tt := t.symbolTT[s&63]
	nbBits := (tt.deltaNbBits + 1<<15) >> 16
	v := nbBits<<16 - tt.deltaNbBits
	return uint32(t.stateTable[uint32(int32(v>>nbBits)+tt.deltaFindState)%(1<<maxFSELog)])
}

// optimalLog is the accuracy log for nb symbols up to maxSym, after
// libzstd's FSE_optimalTableLog: no more accuracy than nb can use, enough
// for every symbol, between 5 and maxLog.
func optimalLog(maxLog uint8, nb, maxSym int) uint8 {
	log := int(maxLog)
	if b := bits.Len(uint(nb-1)) - 1 - 2; b < log {
		log = b
	}
	minBits := min(bits.Len(uint(nb)), bits.Len(uint(maxSym))+1)
	log = max(log, minBits, 5)
	return uint8(min(log, int(maxLog)))
}

// normalize scales hist (nb symbols in all, at least two distinct) to
// counts summing to 1 << log, every present symbol at least 1: floors of
// the exact shares, then the rest to the largest remainders, or taken
// from the largest counts when the minimums overshoot.
func normalize(norm []int16, hist []uint32, nb int, log uint8) {
	size := 1 << log
	sum := 0
	for s, h := range hist {
		if h == 0 {
			norm[s] = 0
			continue
		}
		v := max(int(uint64(h)*uint64(size)/uint64(nb)), 1)
		norm[s] = int16(v)
		sum += v
	}
	for sum < size {
		best, bestRem := -1, int64(-1)
		for s, h := range hist {
			if h == 0 {
				continue
			}
			if rem := int64(h)*int64(size) - int64(norm[s])*int64(nb); rem > bestRem {
				best, bestRem = s, rem
			}
		}
		norm[best]++
		sum++
	}
	for sum > size {
		best := -1
		for s := range hist {
			if norm[s] > 1 && (best < 0 || norm[s] > norm[best]) {
				best = s
			}
		}
		norm[best]--
		sum--
	}
}

// writeNCount appends the FSE table description (RFC 8878 §4.1.1) of
// norm: the accuracy log less 5 in 4 bits, then each symbol's count + 1
// in a variable number of bits, runs of zero counts as 2-bit repeat
// flags, until the counts are all accounted for.
func writeNCount(dst []byte, norm []int16, log uint8) []byte {
	size := 1 << log
	var bs uint64
	var bc uint
	bs |= uint64(log-5) << bc
	bc += 4
	remaining := size + 1
	threshold := size
	nbBits := uint(log) + 1
	flush := func() {
		for bc >= 16 {
			dst = append(dst, byte(bs), byte(bs>>8))
			bs >>= 16
			bc -= 16
		}
	}
	prev0 := false
	s := 0
	for s < len(norm) && remaining > 1 {
		if prev0 {
			start := s
			for s < len(norm) && norm[s] == 0 {
				s++
			}
			for s >= start+24 {
				start += 24
				bs |= 0xffff << bc
				bc += 16
				flush()
			}
			for s >= start+3 {
				start += 3
				bs |= 3 << bc
				bc += 2
			}
			bs |= uint64(s-start) << bc
			bc += 2
			flush()
		}
		count := int(norm[s])
		s++
		maxV := 2*threshold - 1 - remaining
		if count < 0 {
			remaining += count
		} else {
			remaining -= count
		}
		count++
		if count >= threshold {
			count += maxV
		}
		bs |= uint64(count) << bc
		bc += nbBits
		if count < maxV {
			bc--
		}
		prev0 = count == 1
		for remaining < threshold {
			nbBits--
			threshold >>= 1
		}
		flush()
	}
	for bc > 0 {
		dst = append(dst, byte(bs))
		bs >>= 8
		bc -= min(bc, 8)
	}
	return dst
}
