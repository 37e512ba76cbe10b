package zstdenc

import (
	"encoding/binary"
	"slices"

	"github.com/klauspost/compress/fse"
)

// Literal Huffman coding (RFC 8878 §4.2.1) of our own: a 4-way histogram,
// code lengths of at most huffMaxBits built once per block, the table
// description (weights, FSE-coded with klauspost's fse package as the RFC
// allows, or 4 bits each), and streams written with a 64-bit bit container
// four symbols a flush. klauspost's huff0 did the same work at half the
// speed (it counts byte by byte and codes through a generic bit writer),
// and it was most of the time spent on noise-heavy blocks.

const huffMaxBits = 11 // Max_Number_of_Bits for literals

// huffEnc is the literal coder's state; its zero value is ready.
type huffEnc struct {
	hist    [4][256]uint32 // four histograms: counts into one stall on repeats
	count   [256]uint32
	length  [256]uint8  // code length by symbol, 0 when absent
	code    [256]uint64 // code << (64-length), by symbol (see huffStream)
	prev    [256]uint64 // the codes the decoder holds (valid when prevOK)
	prevLen [256]uint8
	prevOK  bool
	sorted  [256]uint64 // count<<8 | symbol of the present symbols
	node    [512]uint32 // counts of leaves then internal nodes
	parent  [512]uint16
	weights [256]byte
	desc    []byte // table description of the block being coded
	fse     fse.Scratch
}

// histogram counts lits into h.count and returns the largest symbol
// present (-1 for no literals) and the largest count.
func (h *huffEnc) histogram(lits []byte) (maxSym int, maxCount uint32) {
	hs := &h.hist
	i := 0
	for ; i+4 <= len(lits); i += 4 {
		w := lits[i : i+4 : i+4]
		hs[0][w[0]]++
		hs[1][w[1]]++
		hs[2][w[2]]++
		hs[3][w[3]]++
	}
	for ; i < len(lits); i++ {
		hs[0][lits[i]]++
	}
	maxSym = -1
	for s := range 256 {
		c := hs[0][s] + hs[1][s] + hs[2][s] + hs[3][s]
		h.count[s] = c
		if c != 0 {
			maxSym = s
			maxCount = max(maxCount, c)
		}
	}
	clear(hs[:])
	return maxSym, maxCount
}

// buildLengths sets h.length from h.count (at least two symbols present):
// Huffman code lengths, limited to huffMaxBits, forming a complete prefix
// code (the weights' sum must be a power of two). It returns the longest
// length, 0 if the limiting failed (the caller then stores the literals
// raw; not seen on any input).
func (h *huffEnc) buildLengths(maxSym int) int {
	n := 0
	for s := range maxSym + 1 {
		h.length[s] = 0
		if c := h.count[s]; c != 0 {
			h.sorted[n] = uint64(c)<<8 | uint64(s)
			n++
		}
	}
	for s := maxSym + 1; s < 256; s++ {
		h.length[s] = 0
	}
	sorted := h.sorted[:n]
	slices.Sort(sorted)
	// Two-queue Huffman construction: leaves 0..n-1 by rising count,
	// internal nodes n.. created in rising order too.
	node, parent := h.node[:2*n-1], h.parent[:2*n-1]
	for i, v := range sorted {
		node[i] = uint32(v >> 8)
	}
	leaf, inner := 0, n
	pick := func(next int) int {
		if leaf < n && (inner >= next || node[leaf] <= node[inner]) {
			leaf++
			return leaf - 1
		}
		inner++
		return inner - 1
	}
	for next := n; next < 2*n-1; next++ {
		a := pick(next)
		b := pick(next)
		node[next] = node[a] + node[b]
		parent[a], parent[b] = uint16(next), uint16(next)
	}
	// Depths, root first; node now holds depths.
	node[2*n-2] = 0
	for i := 2*n - 3; i >= 0; i-- {
		node[i] = node[parent[i]] + 1
	}
	depth := node[:n]
	maxLen := 0
	for _, d := range depth {
		maxLen = max(maxLen, int(d))
	}
	if maxLen > huffMaxBits {
		maxLen = limitLengths(depth)
		if maxLen == 0 {
			return 0
		}
	}
	for i, v := range sorted {
		h.length[byte(v)] = uint8(depth[i])
	}
	return maxLen
}

// limitLengths cuts the code lengths depth (of symbols by rising count) to
// huffMaxBits: lengths over the limit become the limit, then the rarest
// symbols below the limit are lengthened until the code is no longer
// over-full, then the most frequent ones shortened where the slack allows,
// until it is complete. It returns the longest length, or 0 if the code
// did not come out complete.
func limitLengths(depth []uint32) int {
	const lim = huffMaxBits
	kraft := 0 // in units of 2^-lim
	for i, d := range depth {
		if d > lim {
			depth[i] = lim
		}
		kraft += 1 << (lim - depth[i])
	}
	over := kraft - 1<<lim
	for over > 0 {
		best := -1
		for i, d := range depth {
			if d < lim && (best < 0 || d > depth[best]) {
				best = i
			}
		}
		if best < 0 {
			return 0
		}
		over -= 1 << (lim - depth[best] - 1)
		depth[best]++
	}
	for over < 0 {
		done := false
		for i := len(depth) - 1; i >= 0; i-- {
			if d := depth[i]; d > 1 && 1<<(lim-d) <= -over {
				over += 1 << (lim - d)
				depth[i]--
				done = true
				break
			}
		}
		if !done {
			return 0
		}
	}
	maxLen := 0
	for _, d := range depth {
		maxLen = max(maxLen, int(d))
	}
	return maxLen
}

// assignCodes fills code with zstd's canonical codes for the lengths: the
// longest codes get the smallest values, symbols of one length in
// symbol order (RFC 8878 §4.2.1.1's example).
func assignCodes(code *[256]uint64, length *[256]uint8, maxLen int) {
	var cnt [huffMaxBits + 2]uint32
	for _, l := range length {
		cnt[l]++
	}
	var start [huffMaxBits + 2]uint32
	v := uint32(0)
	for l := maxLen; l >= 1; l-- {
		start[l] = v
		v = (v + cnt[l]) >> 1
	}
	for s, l := range length {
		if l == 0 {
			code[s] = 0
			continue
		}
		code[s] = uint64(start[l]) << (64 - l)
		start[l]++
	}
}

// describe writes the table description of h.length (maxSym the largest
// symbol, maxLen the longest length) to h.desc: the weights of symbols
// 0..maxSym-1 (the last is implied), FSE-coded when that is smaller, else
// 4 bits each. false when neither form fits (more than 128 weights that
// FSE does not shrink).
func (h *huffEnc) describe(maxSym, maxLen int) bool {
	w := h.weights[:maxSym]
	for s := range w {
		if l := h.length[s]; l != 0 {
			w[s] = byte(maxLen + 1 - int(l))
		} else {
			w[s] = 0
		}
	}
	h.desc = h.desc[:0]
	direct := (maxSym + 1) / 2
	if maxSym >= 2 {
		h.fse.TableLog = 6 // the RFC's maximum for weights
		b, err := fse.Compress(w, &h.fse)
		if err == nil && len(b) < 128 && (maxSym > 128 || len(b) < direct) {
			h.desc = append(append(h.desc, byte(len(b))), b...)
			return true
		}
	}
	if maxSym > 128 {
		return false
	}
	h.desc = append(h.desc, byte(127+maxSym))
	for i := 0; i < maxSym; i += 2 {
		lo := byte(0)
		if i+1 < maxSym {
			lo = w[i+1]
		}
		h.desc = append(h.desc, w[i]<<4|lo)
	}
	return true
}

// cost is the bits coding the counted literals with code lengths length
// takes, or -1 if a present symbol has no code.
func (h *huffEnc) cost(length *[256]uint8, maxSym int) int {
	bits := 0
	for s, c := range h.count[:maxSym+1] {
		if c == 0 {
			continue
		}
		l := length[s]
		if l == 0 {
			return -1
		}
		bits += int(c) * int(l)
	}
	return bits
}

// The stream writers keep their bits at the top of a 64-bit container:
// a code enters from above, pushing the bits before it down (c>>length |
// code<<(64-length), the table entry holding both: one shift, one or and
// one add a symbol). Right-aligned, the container holds the stream LSB
// first, each symbol above the ones before it, as the format wants;
// flushing stores that and keeps the container, whose flushed bits fall
// off the bottom later. Symbols go in last to first (the decoder reads
// the stream from its end), and a 1 bit marks the end (RFC 8878 §4.2.2).

// huffStream appends the Huffman stream of src coded with the codes
// code (at the top of the word) and lengths length at out[pos:] (out has
// room for the stream and 8 bytes more) and returns where it ends. The
// loop keeps everything in registers: per symbol a byte load, two table
// loads, a shift, an or and an add.
func huffStream(out []byte, pos int, src []byte, code *[256]uint64, length *[256]uint8) int {
	var c uint64
	var nb uint
	i := len(src)
	for i&3 != 0 {
		i--
		l := length[src[i]]
		c = c>>(l&63) | code[src[i]]
		nb += uint(l)
	}
	for i >= 4 {
		binary.LittleEndian.PutUint64((*[8]byte)(out[pos : pos+8])[:], c>>((64-nb)&63))
		pos += int(nb >> 3)
		nb &= 7
		w := src[i-4 : i : i]
		l := length[w[3]]
		c = c>>(l&63) | code[w[3]]
		nb += uint(l)
		l = length[w[2]]
		c = c>>(l&63) | code[w[2]]
		nb += uint(l)
		l = length[w[1]]
		c = c>>(l&63) | code[w[1]]
		nb += uint(l)
		l = length[w[0]]
		c = c>>(l&63) | code[w[0]]
		nb += uint(l)
		i -= 4
	}
	// The end mark, then the last bytes (junk above them is overwritten
	// by what follows).
	c = c>>1 | 1<<63
	nb++
	binary.LittleEndian.PutUint64(out[pos:], c>>((64-nb)&63))
	return pos + int((nb+7)>>3)
}
