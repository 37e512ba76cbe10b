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
// and it was most of the time spent on noise-heavy blocks. Sizes are
// exact (a histogram per stream), so the choice between a new table and
// the previous one counts every byte, and ties between symbols of one
// count go to the lengths that pad the four streams least (balance): on
// 12-bit noise, where no match exists and both encoders code at the
// Huffman bound, that is what makes the frames smaller than libzstd
// 1.5.7's level 1 (1,101 bytes an orca2 rand epoch of 2304 chunks, where
// they were 17 bytes larger).

const huffMaxBits = 11 // Max_Number_of_Bits for literals

// huffEnc is the literal coder's state; its zero value is ready.
type huffEnc struct {
	hist    [4][256]uint32 // four histograms: counts into one stall on repeats
	count   [256]uint32
	length  [256]uint8  // code length by symbol, 0 when absent
	code    [256]uint64 // code << (64-length) | length, by symbol (see huffStream)
	prev    [256]uint64 // the codes the decoder holds (valid when prevOK)
	prevLen [256]uint8
	prevOK  bool
	sorted  [256]uint64 // count<<8 | symbol of the present symbols
	node    [512]uint32 // counts of leaves then internal nodes
	parent  [512]uint16
	weights [256]byte
	desc    []byte // table description of the block being coded
	alt     []byte // newTable's second description
	nsym    int    // symbols in sorted
	fse     fse.Scratch
}

// histogram counts lits into h.count and returns the largest symbol
// present (-1 for no literals) and the largest count. For 1024 literals
// and more (four streams), h.hist keeps each stream's segment's counts,
// so that streamBytes knows every stream's exact length under any code
// (their padding and the choice of table depend on it); four histograms
// also keep a run of one byte from stalling on one counter. They stay
// until the next call.
func (h *huffEnc) histogram(lits []byte) (maxSym int, maxCount uint32) {
	hs := &h.hist
	clear(hs[:])
	if n := len(lits); n >= 1024 {
		// The segments of literals(): seg bytes each, the last shorter
		// (n > 9, so it is not empty).
		seg := (n + 3) / 4
		d := lits[3*seg:]
		a, b, c := lits[:seg], lits[seg:2*seg], lits[2*seg:3*seg]
		a2, b2, c2 := a[:len(d)], b[:len(d)], c[:len(d)]
		for i, x := range d {
			hs[0][a2[i]]++
			hs[1][b2[i]]++
			hs[2][c2[i]]++
			hs[3][x]++
		}
		for i := len(d); i < seg; i++ {
			hs[0][a[i]]++
			hs[1][b[i]]++
			hs[2][c[i]]++
		}
	} else {
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
	h.nsym = n
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
// symbol order (RFC 8878 §4.2.1.1's example). Each entry is the code at
// the top of the word and its length in the low 6 bits (huffStream's one
// load a symbol; a code has at most huffMaxBits bits, so they never meet).
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
		code[s] = uint64(start[l])<<(64-l) | uint64(l)
		start[l]++
	}
}

// newTable sets h.length, h.code and h.desc to a new table for the
// counted literals (maxSym and maxLen as buildLengths left them, single
// for one stream) and returns the exact bytes of its description and
// streams, or -1 if no description fits. For four streams it also
// weighs the table balance makes, which ends the streams with less
// padding, and keeps whichever is smaller with its description (the
// swapped weights can code a byte longer).
func (h *huffEnc) newTable(maxSym, maxLen int, single bool) int {
	size := -1
	if h.describe(maxSym, maxLen) {
		size = len(h.desc) + h.streamBytes(&h.length, maxSym, single)
	}
	orig := h.length
	if !single && h.balance(maxSym) {
		h.desc, h.alt = h.alt, h.desc
		if h.describe(maxSym, maxLen) {
			if s := len(h.desc) + h.streamBytes(&h.length, maxSym, false); size < 0 || s < size {
				assignCodes(&h.code, &h.length, maxLen)
				return s
			}
		}
		h.desc, h.alt = h.alt, h.desc
		h.length = orig
	}
	assignCodes(&h.code, &h.length, maxLen)
	return size
}

// balanceRun is the most symbols of one count balance pairs up.
const balanceRun = 16

// balance swaps the code lengths of symbols with equal counts where that
// ends the four streams in fewer bytes. A swap keeps the code optimal and
// the bits in all (both symbols' counts are the same), and moves bits
// between the streams only, whose last partial bytes it can save: each
// stream is its bits and an end marker rounded up to a byte. It changes
// h.length (from buildLengths, h.sorted by rising count) and reports
// whether it did.
func (h *huffEnc) balance(maxSym int) bool {
	var bits [4]int
	for k := range bits {
		bits[k] = weigh(h.hist[k][:maxSym+1], &h.length)
	}
	cur := padded(&bits)
	sorted := h.sorted[:h.nsym]
	changed := false
	for i := 0; i < len(sorted); {
		c := sorted[i] >> 8
		j, mixed := i+1, false
		for j < len(sorted) && sorted[j]>>8 == c {
			mixed = mixed || h.length[byte(sorted[j])] != h.length[byte(sorted[i])]
			j++
		}
		if !mixed {
			i = j
			continue
		}
		run := sorted[i:min(j, i+balanceRun)]
		for a := range run {
			for b := a + 1; b < len(run); b++ {
				x, y := byte(run[a]), byte(run[b])
				d := int(h.length[y]) - int(h.length[x])
				if d == 0 {
					continue
				}
				// x takes y's length and y x's.
				var nb [4]int
				for k := range nb {
					nb[k] = bits[k] + d*(int(h.hist[k][x])-int(h.hist[k][y]))
				}
				if t := padded(&nb); t < cur {
					h.length[x], h.length[y] = h.length[y], h.length[x]
					bits, cur, changed = nb, t, true
				}
			}
		}
		i = j
	}
	return changed
}

// padded is the bytes four streams of these bits take, end markers and
// padding included.
func padded(bits *[4]int) int {
	t := 0
	for _, b := range bits {
		t += (b + 8) >> 3
	}
	return t
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

// streamBytes is the exact length of the Huffman stream the counted
// literals take with code lengths length (single) or of their four
// streams (jump table not included): each stream's bits, its end marker
// and its padding to a byte. -1 if a present symbol has no code.
func (h *huffEnc) streamBytes(length *[256]uint8, maxSym int, single bool) int {
	if single {
		bits := weigh(h.count[:maxSym+1], length)
		if bits < 0 {
			return -1
		}
		return (bits + 8) / 8
	}
	total := 0
	for k := range h.hist {
		bits := weigh(h.hist[k][:maxSym+1], length)
		if bits < 0 {
			return -1
		}
		total += (bits + 8) / 8
	}
	return total
}

// weigh is the bits coding the symbols counted in count (by symbol) with
// code lengths length take, or -1 if a present symbol has no code.
func weigh(count []uint32, length *[256]uint8) int {
	bits := 0
	for s, c := range count {
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
// code<<(64-length)). The table entry holds both, the code at the top and
// its length in the low 6 bits: one load, one shift, one or and one add a
// symbol. The length bits or'ed into the container's bottom are junk
// below the live bits: those are the top nb <= 7+4*huffMaxBits = 51 bits,
// so bits 0..5 never hold one, and later shifts only move junk down.
// Right-aligned, the container holds the stream LSB first, each symbol
// above the ones before it, as the format wants; flushing stores that and
// keeps the container, whose flushed bits fall off the bottom later.
// Symbols go in last to first (the decoder reads the stream from its
// end), and a 1 bit marks the end (RFC 8878 §4.2.2).

// huffStream appends the Huffman stream of src coded with the table
// entries code (see assignCodes) at out[pos:] (out has room for the
// stream and 8 bytes more) and returns where it ends. The loop keeps
// everything in registers: per symbol a byte load, a table load, a shift,
// an or, an and and an add.
func huffStream(out []byte, pos int, src []byte, code *[256]uint64) int {
	var c uint64
	var nb uint
	i := len(src)
	for i&3 != 0 {
		i--
		e := code[src[i]]
		c = c>>(e&63) | e
		nb += uint(e & 63)
	}
	for i >= 4 {
		binary.LittleEndian.PutUint64((*[8]byte)(out[pos : pos+8])[:], c>>((64-nb)&63))
		pos += int(nb >> 3)
		nb &= 7
		w := src[i-4 : i : i]
		e := code[w[3]]
		c = c>>(e&63) | e
		nb += uint(e & 63)
		e = code[w[2]]
		c = c>>(e&63) | e
		nb += uint(e & 63)
		e = code[w[1]]
		c = c>>(e&63) | e
		nb += uint(e & 63)
		e = code[w[0]]
		c = c>>(e&63) | e
		nb += uint(e & 63)
		i -= 4
	}
	// The end mark, then the last bytes (junk above them is overwritten
	// by what follows).
	c = c>>1 | 1<<63
	nb++
	binary.LittleEndian.PutUint64(out[pos:], c>>((64-nb)&63))
	return pos + int((nb+7)>>3)
}
