package zstdenc

import (
	"encoding/binary"
	"math"
	"math/bits"
	"unsafe"
)

const (
	maxBlock = 128 << 10 // Block_Maximum_Size
	// singleMax is the largest frame written as a single segment (window
	// = content size); larger inputs get a window of singleMax, which
	// every decoder accepts (libzstd's default limit is 128 MiB).
	singleMax = 8 << 20
	hashLog   = 15
	// skipLog: after a miss the parser moves on 2 + (bytes since the last
	// match) >> skipLog, so incompressible stretches cost little but a
	// match after one is still found within ~2^skipLog bytes.
	skipLog = 7
)

// Encoder writes zstd frames (RFC 8878). Reuse one per goroutine: it
// keeps its hash table and buffers, so EncodeAll does not allocate once
// they have grown. Not safe for concurrent use; the zero value is ready.
type Encoder struct {
	// table maps a hash of 6 bytes to where they last occurred: position+1
	// in the low bits (as many as the frame's positions need), the same
	// bits of the 4 bytes found there in the rest (a tag), so that most
	// candidates that do not match are rejected without reading src (a
	// cache miss, on noisy data the common case). 4-byte entries: the
	// 8-byte ones of before, position and all 4 bytes, made a 256 KiB
	// table whose misses cost more than the src reads the tag leaves.
	table *[1 << hashLog]uint32
	lits  []byte
	body  []byte // the block being coded
	seqs  []sequence
	huf   huffEnc
	rep   [3]uint32
	// The literal length, match length and offset tables of the block
	// being coded: built there, or copied from the predefined ones, so
	// that the coding loop addresses all three from one pointer (a
	// register fewer than three pointers; 4.5 KiB copied a block).
	tabs seqTables
}

// seqTables are the three tables a block's sequences are coded with.
type seqTables struct{ ll, ml, of fseTable }

// sequence is one zstd sequence: litLen literals, then a match of
// matchLen bytes; offBase is the RFC's Offset_Value (1..3 name a repeat
// offset, offset+3 otherwise).
type sequence struct {
	litLen, matchLen, offBase uint32
	// The literal length, match length and offset codes, set by
	// sequences: beside the values, so the coding loop reads one array.
	lc, mc, oc uint8
}

// MaxEncodedSize is the largest frame EncodeAll writes for n bytes: the
// 18-byte worst-case frame header and, for every block, a 3-byte header
// and the block stored raw. MaxEncodedSizeBlocks is the same for
// EncodeAllBlocks with blocks of block bytes.
func MaxEncodedSize(n int) int { return MaxEncodedSizeBlocks(n, maxBlock) }

func MaxEncodedSizeBlocks(n, block int) int { return n + 18 + 3*(n/clampBlock(block)+1) }

// clampBlock is the zstd block size EncodeAllBlocks uses for block: at
// most Block_Maximum_Size, 0 or less meaning that.
func clampBlock(block int) int {
	if block <= 0 || block > maxBlock {
		return maxBlock
	}
	return block
}

// EncodeAll appends the zstd frame of src to dst: content size present,
// no checksum, no dictionary; a single segment up to 8 MiB. When dst has
// MaxEncodedSize(len(src)) bytes of spare capacity it does not grow.
func (e *Encoder) EncodeAll(dst, src []byte) []byte { return e.EncodeAllBlocks(dst, src, maxBlock) }

// EncodeAllBlocks is EncodeAll with zstd blocks of block bytes (at most
// 128 KiB; 0 means that): each block gets its own literal and sequence
// tables, which pays when the caller knows where the statistics change,
// such as at the byte planes of a blosc-shuffled block.
func (e *Encoder) EncodeAllBlocks(dst, src []byte, block int) []byte {
	block = clampBlock(block)
	n := len(src)
	window := n
	if n > singleMax {
		window = singleMax
	}
	dst = appendFrameHeader(dst, n)
	if n == 0 {
		return append(dst, 1, 0, 0) // one empty raw block, the last
	}
	if e.table == nil {
		e.table = new([1 << hashLog]uint32)
	}
	clear(e.table[:])
	e.rep = [3]uint32{1, 4, 8}
	e.huf.prevOK = false // a new frame: the decoder has no table
	for start := 0; start < n; start += block {
		end := min(n, start+block)
		dst = e.block(dst, src, start, end, end == n, window)
	}
	return dst
}

// appendFrameHeader writes the magic number, the frame header descriptor,
// a window descriptor for multi-segment frames, and the content size in
// the smallest field that holds it.
func appendFrameHeader(dst []byte, n int) []byte {
	dst = append(dst, 0x28, 0xb5, 0x2f, 0xfd)
	if n <= singleMax {
		switch {
		case n < 256:
			return append(dst, 0x20, byte(n))
		case n < 65536+256:
			return binary.LittleEndian.AppendUint16(append(dst, 0x60), uint16(n-256))
		default:
			return binary.LittleEndian.AppendUint32(append(dst, 0xa0), uint32(n))
		}
	}
	// Window_Descriptor: exponent log2(singleMax)-10, mantissa 0.
	wd := byte(bits.Len(singleMax)-1-10) << 3
	if uint64(n) <= 0xffffffff {
		return binary.LittleEndian.AppendUint32(append(dst, 0x80, wd), uint32(n))
	}
	return binary.LittleEndian.AppendUint64(append(dst, 0xc0, wd), uint64(n))
}

// blockHeader is the 3-byte Block_Header: last flag, type, size.
func blockHeader(dst []byte, last bool, typ, size int) []byte {
	v := uint32(typ<<1 | size<<3)
	if last {
		v |= 1
	}
	return append(dst, byte(v), byte(v>>8), byte(v>>16))
}

const (
	blockRaw        = 0
	blockRLE        = 1
	blockCompressed = 2
)

// block appends src[start:end] as one block: RLE when it is one repeated
// byte, compressed when that is smaller than the bytes, else raw.
func (e *Encoder) block(dst, src []byte, start, end int, last bool, window int) []byte {
	blk := src[start:end]
	if isRun(blk) {
		return append(blockHeader(dst, last, blockRLE, len(blk)), blk[0])
	}
	rep := e.rep
	e.parse(src, start, end, window)
	// The body goes to the encoder's own buffer first: a block of many
	// short matches can code larger than its bytes, and dst may only have
	// room for the raw block.
	e.body = e.compressed(e.body[:0], len(blk))
	if len(e.body) < len(blk) {
		return append(blockHeader(dst, last, blockCompressed, len(e.body)), e.body...)
	}
	// Stored raw, the sequences are never seen: the decoder's repeat
	// offsets stay as they were, and so does its Huffman table, which
	// need not be the one this block's literals left as the previous.
	e.rep = rep
	e.huf.prevOK = false
	return append(blockHeader(dst, last, blockRaw, len(blk)), blk...)
}

// isRun reports whether b (not empty) is one byte repeated.
func isRun(b []byte) bool {
	c := b[0]
	w := uint64(c) * 0x0101010101010101
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if binary.LittleEndian.Uint64(b[i:]) != w {
			return false
		}
	}
	for ; i < len(b); i++ {
		if b[i] != c {
			return false
		}
	}
	return true
}

// hash6 hashes the low 6 bytes of v into hashLog bits (zstd's 6-byte
// multiplicative hash).
func hash6(v uint64) uint16 {
	const prime6 = 227718039650203
	return uint16(((v << 16) * prime6) >> (64 - hashLog))
}

// parse cuts src[start:end] into sequences and literals with a greedy
// single-table match finder (zstd's "fast" strategy): 6-byte hashes,
// matches of at least 4 bytes extended both ways, the last repeat offset
// tried first one byte ahead, and a stride that grows with the distance
// from the last match. Matches reach back into earlier blocks of the
// frame but never past end.
func (e *Encoder) parse(src []byte, start, end, window int) {
	if cap(e.lits) < end-start+16 {
		e.lits = make([]byte, 0, maxBlock+16) // block sizes are at most that
	}
	e.lits = e.lits[:0]
	e.seqs = e.seqs[:0]
	table := e.table
	anchor, ip := start, start
	ilimit := end - 9
	// Entries hold position+1 (at most len(src)) in the low bits.
	posMask := uint32(1)<<bits.Len(uint(len(src))) - 1
	tagMask := ^posMask
	// The repeat offsets in registers, e.rep written back at the end.
	r0, r1, r2 := e.rep[0], e.rep[1], e.rep[2]
	if window >= len(src) {
		window = len(src) // ip-cand <= window always holds
	}
	sp := unsafe.Pointer(unsafe.SliceData(src))
	for ip < ilimit {
		var cand int
		var rep bool
		ip, cand, rep = search(sp, table, ip, anchor, ilimit, int(r0), posMask, window)
		if cand < 0 {
			break
		}
		if rep {
			ml := 4 + matchLen(src, ip+4, cand+4, end)
			e.addLits(src, anchor, ip)
			e.seqs = append(e.seqs, sequence{litLen: uint32(ip - anchor), matchLen: uint32(ml), offBase: 1}) // r0 again: no change
			ip += ml
			anchor = ip
			continue
		}
		// Backwards while the bytes before agree (cand < ip, so cand-1 is
		// in src whenever ip-1 is).
		for ip > anchor && cand > 0 && src[ip-1] == src[cand-1] {
			ip--
			cand--
		}
		ml := 4 + matchLen(src, ip+4, cand+4, end)
		var ob uint32
		ob, r0, r1, r2 = repCode(uint32(ip-cand), uint32(ip-anchor), r0, r1, r2)
		if ip > anchor {
			e.addLits(src, anchor, ip)
		}
		e.seqs = append(e.seqs, sequence{litLen: uint32(ip - anchor), matchLen: uint32(ml), offBase: ob})
		m := ip
		ip += ml
		anchor = ip
		if ip < ilimit {
			// Two positions of the match go into the table too (zstd's
			// fast strategy): the next copy of this stretch finds them.
			// m+4 <= ip < end-9: both loads end before end.
			v, w := load64p(sp, m+2), load64p(sp, ip-2)
			table[hash6(v)] = uint32(m+3) | uint32(v)&tagMask
			table[hash6(w)] = uint32(ip-1) | uint32(w)&tagMask
		}
		// Right after a match the previous offset often continues (rows,
		// interleaved channels): a zero-literal repeat match costs a few
		// bits. (r1 is now the offset before this match's, or 4 after a
		// frame's first match: never more than ip; checked all the same,
		// as the load below goes through the pointer.)
		for ip < ilimit {
			r := int(r1)
			// ip+8 < end, ip-r >= 0.
			if r > ip || load32p(sp, ip) != load32p(sp, ip-r) {
				break
			}
			ml := 4 + matchLen(src, ip+4, ip+4-r, end)
			v := load64p(sp, ip)
			table[hash6(v)] = uint32(ip+1) | uint32(v)&tagMask
			// No literals, the second offset: it moves to the front.
			r0, r1 = r1, r0
			e.seqs = append(e.seqs, sequence{matchLen: uint32(ml), offBase: 1})
			ip += ml
			anchor = ip
		}
	}
	e.lits = append(e.lits, src[anchor:end]...)
	e.rep = [3]uint32{r0, r1, r2}
}

// search looks for the next match from ip on (ip < ilimit = end-9),
// two positions a step, their lookups overlapping in the memory system
// (zstd's fast loop does the same), the stride growing with the distance
// from anchor, every position looked at entered into the table. It
// returns the position p and an earlier position cand whose 4 bytes are
// the same, rep when that is the repeat offset rep0 one byte ahead, or
// cand -1 when it reached ilimit. A function of its own, with src as a
// pointer, so that its state stays in registers and its loads carry no
// bounds checks: each says why it is inside src.
func search(sp unsafe.Pointer, table *[1 << hashLog]uint32, ip, anchor, ilimit, rep0 int, posMask uint32, window int) (p, cand int, rep bool) {
	tagMask := ^posMask
	for ip < ilimit {
		// ip+9 <= end <= len(src).
		cur0, cur1 := load64p(sp, ip), load64p(sp, ip+1)
		// The repeat offset one byte ahead: bytes ip+1.. are cur1. rep0
		// is 1 at the frame's start and then always an offset some
		// earlier match used, so 0 <= ip+1-rep0 < ip.
		if uint32(cur1) == load32p(sp, ip+1-rep0) {
			return ip + 1, ip + 1 - rep0, true
		}
		h0, h1 := hash6(cur0), hash6(cur1)
		t0, t1 := table[h0], table[h1]
		table[h0], table[h1] = uint32(ip+1)|uint32(cur0)&tagMask, uint32(ip+2)|uint32(cur1)&tagMask
		// The tags agree when the xor has no bits above posMask.
		// Entries are position+1 of an earlier position of this frame
		// (the table is cleared per frame and read before this step's
		// stores), so 0 <= c0 < ip and 0 <= c1 <= ip: loads inside src.
		if c0 := int(t0&posMask) - 1; t0^uint32(cur0) <= posMask && c0 >= 0 && uint32(cur0) == load32p(sp, c0) && ip-c0 <= window {
			return ip, c0, false
		}
		if c1 := int(t1&posMask) - 1; t1^uint32(cur1) <= posMask && c1 >= 0 && uint32(cur1) == load32p(sp, c1) && ip+1-c1 <= window {
			return ip + 1, c1, false
		}
		ip += 2 + (ip-anchor)>>skipLog
	}
	return ip, -1, false
}

// load32p and load64p read 4 and 8 bytes at p+i, in the machine's byte
// order (compared with each other and hashed only).
func load32p(p unsafe.Pointer, i int) uint32 { return *(*uint32)(unsafe.Add(p, i)) }
func load64p(p unsafe.Pointer, i int) uint64 { return *(*uint64)(unsafe.Add(p, i)) }

// le64p reads 8 bytes at p+i little-endian (one load on amd64 and arm64):
// for copies and for matchLen, where the byte order matters.
func le64p(p unsafe.Pointer, i int) uint64 {
	return binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(p, i))[:])
}

// matchLen is the number of equal bytes at a and b (b < a), stopping at
// end <= len(src). It reads through a pointer: the 8-byte loads end at
// a+n+8 <= end for a and below that for b, the byte loads below end.
// Little-endian loads, so the first differing byte is the lowest.
func matchLen(src []byte, a, b, end int) int {
	sp := unsafe.Pointer(unsafe.SliceData(src))
	_ = src[end-1]
	n := 0
	for a+n+8 <= end {
		if x := le64p(sp, a+n) ^ le64p(sp, b+n); x != 0 {
			return n + bits.TrailingZeros64(x)>>3
		}
		n += 8
	}
	for a+n < end && src[a+n] == src[b+n] {
		n++
	}
	return n
}

// addLits appends src[anchor:ip] (not empty: data that matches back to
// back has no literals, and the call is skipped) to the block's
// literals, short runs as two 8-byte copies (parse left 16 bytes of room
// in lits).
func (e *Encoder) addLits(src []byte, anchor, ip int) {
	ll := ip - anchor
	if l := len(e.lits); ll <= 16 && ip+16 <= len(src) && cap(e.lits)-l >= 16 {
		// anchor+16 <= ip+16 <= len(src): the loads are inside src.
		sp := unsafe.Pointer(unsafe.SliceData(src))
		d := e.lits[l : l+16 : l+16]
		binary.LittleEndian.PutUint64(d, le64p(sp, anchor))
		binary.LittleEndian.PutUint64(d[8:], le64p(sp, anchor+8))
		e.lits = e.lits[:l+ll]
		return
	}
	e.lits = append(e.lits, src[anchor:ip]...)
}

// repCode is the Offset_Value that makes the decoder resolve a match at
// offset off after ll literals, with repeat offsets r0, r1, r2, and the
// repeat offsets after it, updated as the decoder will (RFC 8878
// §3.1.1.5): a repeat code when off is one of them (or r0-1 without
// literals), off+3 otherwise.
func repCode(off, ll, r0, r1, r2 uint32) (ob, n0, n1, n2 uint32) {
	if ll > 0 {
		switch off {
		case r0:
			return 1, r0, r1, r2
		case r1:
			return 2, r1, r0, r2
		case r2:
			return 3, r2, r0, r1
		}
	} else {
		switch off {
		case r1:
			return 1, r1, r0, r2
		case r2:
			return 2, r2, r0, r1
		case r0 - 1:
			return 3, off, r0, r1
		}
	}
	return off + 3, off, r0, r1
}

// compressed appends the literals and sequences sections of the block
// just parsed. The caller compares the result with the block's size.
func (e *Encoder) compressed(dst []byte, blockLen int) []byte {
	start := len(dst)
	dst = e.literals(dst)
	if len(dst)-start >= blockLen {
		return dst // the literals alone are no smaller; stored raw
	}
	return e.sequences(dst)
}

// literals appends the literals section: Huffman coded (4 streams from
// 1024 literals on, as required above 1023) when that is smaller, with
// the previous block's table when that costs less than a new one and its
// description, RLE when they are one byte repeated, raw otherwise.
func (e *Encoder) literals(dst []byte) []byte {
	lits := e.lits
	n := len(lits)
	h := &e.huf
	prevOK := h.prevOK
	h.prevOK = false // until this block's table is known to be the decoder's
	if n < 64 {
		if n > 0 && isRun(lits) {
			return append(rawLitHeader(dst, 1, n), lits[0])
		}
		return append(rawLitHeader(dst, 0, n), lits...)
	}
	maxSym, maxCount := h.histogram(lits)
	if int(maxCount) == n {
		return append(rawLitHeader(dst, 1, n), lits[0])
	}
	code, typ := &h.code, litCompressed
	// size: the exact bytes of the table description and the streams,
	// -1 while no code is possible; a new table against the previous
	// one by these exact sizes, padding included.
	single := n < 1024
	maxLen := h.buildLengths(maxSym)
	size := -1
	if maxLen > 0 {
		size = h.newTable(maxSym, maxLen, single)
	}
	if prevOK {
		if b := h.streamBytes(&h.prevLen, maxSym, single); b >= 0 && (size < 0 || b <= size) {
			code, typ, size = &h.prev, litTreeless, b
		}
	}
	est := size // what follows the header: description, jump table, streams
	if !single {
		est += 6
	}
	if size < 0 || est+compLitHeaderSize(n, est) >= n+rawLitHeaderSize(n) {
		return append(rawLitHeader(dst, 0, n), lits...)
	}
	start := len(dst)
	hdr := compLitHeaderSize(n, est+8)
	if need := start + hdr + est + 8 + 16; cap(dst) < need {
		dst = append(make([]byte, 0, need+need/4), dst...)
	}
	out := dst[:cap(dst)]
	pos := start + hdr
	if typ == litCompressed {
		pos += copy(out[pos:], h.desc)
	}
	if single {
		pos = huffStream(out, pos, lits, code)
	} else {
		jump := pos
		pos += 6
		seg := (n + 3) / 4
		for k := range 4 {
			s := pos
			pos = huffStream(out, pos, lits[min(k*seg, n):min((k+1)*seg, n)], code)
			if k < 3 {
				binary.LittleEndian.PutUint16(out[jump+2*k:], uint16(pos-s))
			}
		}
	}
	c := pos - start - hdr
	if hs := compLitHeaderSize(n, c); hs < hdr {
		// c is est (streamBytes is exact; TestStreamBytesExact), the
		// header reserved for est+8, so it can only come out smaller.
		copy(out[start+hs:], out[start+hdr:pos])
		pos -= hdr - hs
		hdr = hs
	}
	if c+hdr >= n+rawLitHeaderSize(n) {
		return append(rawLitHeader(dst[:start], 0, n), lits...)
	}
	compLitHeader(out[start:start], typ, n, c, single)
	if typ == litCompressed {
		h.prev, h.prevLen = h.code, h.length
	}
	h.prevOK = true
	return out[:pos]
}

// Literals block types (RFC 8878 §3.1.1.3.1.1) that Huffman-code.
const (
	litCompressed = 2
	litTreeless   = 3
)

// rawLitHeader is the Raw (typ 0) or RLE (typ 1) literals header for n
// literals.
func rawLitHeader(dst []byte, typ, n int) []byte {
	switch {
	case n < 32:
		return append(dst, byte(typ|n<<3))
	case n < 4096:
		v := typ | 1<<2 | n<<4
		return append(dst, byte(v), byte(v>>8))
	}
	v := typ | 3<<2 | n<<4
	return append(dst, byte(v), byte(v>>8), byte(v>>16))
}

func rawLitHeaderSize(n int) int {
	switch {
	case n < 32:
		return 1
	case n < 4096:
		return 2
	}
	return 3
}

// compLitHeaderSize and compLitHeader are the Compressed literals header
// for n literals in c bytes: one stream (n < 1024) or four.
func compLitHeaderSize(n, c int) int {
	switch m := max(n, c); {
	case m < 1024:
		return 3
	case m < 16384:
		return 4
	}
	return 5
}

func compLitHeader(dst []byte, typ, n, c int, single bool) []byte {
	switch compLitHeaderSize(n, c) {
	case 3:
		sf := 1
		if single {
			sf = 0
		}
		v := uint32(typ | sf<<2 | n<<4 | c<<14)
		return append(dst, byte(v), byte(v>>8), byte(v>>16))
	case 4:
		v := uint32(typ | 2<<2 | n<<4 | c<<18)
		return binary.LittleEndian.AppendUint32(dst, v)
	}
	v := uint64(typ | 3<<2 | n<<4 | c<<22)
	return append(binary.LittleEndian.AppendUint32(dst, uint32(v)), byte(v>>32))
}

// Symbol compression modes (RFC 8878 §3.1.1.3.2.1).
const (
	modePredefined = 0
	modeRLE        = 1
	modeCompressed = 2
)

// sequences appends the sequences section.
func (e *Encoder) sequences(dst []byte) []byte {
	nb := len(e.seqs)
	switch {
	case nb < 128:
		dst = append(dst, byte(nb))
	case nb < 0x7f00:
		dst = append(dst, byte(nb>>8+128), byte(nb))
	default:
		dst = append(dst, 255, byte(nb-0x7f00), byte((nb-0x7f00)>>8))
	}
	if nb == 0 {
		return dst
	}
	var llHist [llMaxCode + 1]uint32
	var mlHist [mlMaxCode + 1]uint32
	var ofHist [ofMaxCode + 1]uint32
	seqs := e.seqs
	for i := range seqs {
		s := &seqs[i]
		lc, mc, oc := llCode(s.litLen), mlCode(s.matchLen-3), uint8(bits.Len32(s.offBase)-1)
		s.lc, s.mc, s.oc = lc, mc, oc
		llHist[lc]++
		mlHist[mc]++
		ofHist[oc]++
	}
	modesAt := len(dst)
	dst = append(dst, 0)
	var llM, ofM, mlM int
	var llT, mlT, ofT *fseTable
	t := &e.tabs
	llM, llT, dst = e.chooseTable(dst, llHist[:], nb, &t.ll, &llDefault, llDefaultNorm, llMaxLog, seqs[0].lc)
	ofM, ofT, dst = e.chooseTable(dst, ofHist[:], nb, &t.of, &ofDefault, ofDefaultNorm, ofMaxLog, seqs[0].oc)
	mlM, mlT, dst = e.chooseTable(dst, mlHist[:], nb, &t.ml, &mlDefault, mlDefaultNorm, mlMaxLog, seqs[0].mc)
	for _, c := range []struct{ dst, src *fseTable }{{&t.ll, llT}, {&t.ml, mlT}, {&t.of, ofT}} {
		if c.src != c.dst {
			*c.dst = *c.src
		}
	}
	dst[modesAt] = byte(llM<<6 | ofM<<4 | mlM<<2)

	// At most 9+9+8 state bits and 16+16+31 extra bits a sequence, and
	// the final states: 12 bytes a sequence and 4 bytes more cover it,
	// and the 8 bytes past the end its word stores touch.
	if need := len(dst) + 12*nb + 4 + 8; cap(dst) < need {
		dst = append(make([]byte, 0, need+need/2), dst...)
	}
	end := encodeSeqs(dst[:cap(dst)], len(dst), seqs, t)
	return dst[:end]
}

// encodeSeqs writes the sequences' bitstream into out from pos on (out
// has the room: see sequences) and returns where it ends: the sequences
// last to first, each as its offset, match length and literal length
// state transitions and then its literal length, match length and
// offset extra bits, the final states last (RFC 8878 §3.1.1.4). The bit
// container, states and tables are locals so that they stay in
// registers; the index masks only spare bounds checks (codes are below
// 64 and state indices below 1 << maxFSELog by construction).
func encodeSeqs(out []byte, pos int, seqs []sequence, t *seqTables) int {
	// A sequence takes at most 89 bits, the final states and end mark 28:
	// the stream ends before pos + 12*len(seqs) + 4 and the last word
	// store 8 bytes later. Checked here once, the stores go through a
	// pointer.
	_ = out[pos+12*len(seqs)+11]
	op := unsafe.Pointer(unsafe.SliceData(out))
	var acc uint64
	var n uint
	// n stays below 64 (see the loop), so the mask only spares the
	// shift's check for counts of 64 and more.
	flush := func() {
		binary.LittleEndian.PutUint64((*[8]byte)(unsafe.Add(op, pos))[:], acc)
		pos += int(n >> 3)
		acc >>= (n &^ 7) & 63
		n &= 7
	}
	last := len(seqs) - 1
	s := seqs[last]
	lc, mc, oc := s.lc&63, s.mc&63, s.oc&63
	vLL, vML, vOF := t.ll.initState(lc), t.ml.initState(mc), t.of.initState(oc)
	acc = uint64(s.litLen - llBase[lc])
	n = uint(llBits[lc])
	acc |= uint64(s.matchLen-3-mlBase[mc]) << (n & 63)
	n += uint(mlBits[mc])
	flush()
	acc |= uint64(s.offBase) & lowMask[oc&31] << (n & 63)
	n += uint(oc)
	flush()
	for i := last - 1; i >= 0; i-- {
		s := &seqs[i]
		lc, mc, oc := s.lc&63, s.mc&63, s.oc&63
		tt := t.of.symbolTT[oc]
		nb := uint((vOF + tt.deltaNbBits) >> 16)
		acc |= uint64(vOF) & lowMask[nb&31] << (n & 63)
		n += nb
		vOF = uint32(t.of.stateTable[uint32(int32(vOF>>(nb&31))+tt.deltaFindState)%(1<<maxFSELog)])
		tt = t.ml.symbolTT[mc]
		nb = uint((vML + tt.deltaNbBits) >> 16)
		acc |= uint64(vML) & lowMask[nb&31] << (n & 63)
		n += nb
		vML = uint32(t.ml.stateTable[uint32(int32(vML>>(nb&31))+tt.deltaFindState)%(1<<maxFSELog)])
		tt = t.ll.symbolTT[lc]
		nb = uint((vLL + tt.deltaNbBits) >> 16)
		acc |= uint64(vLL) & lowMask[nb&31] << (n & 63)
		n += nb
		vLL = uint32(t.ll.stateTable[uint32(int32(vLL>>(nb&31))+tt.deltaFindState)%(1<<maxFSELog)])
		// At most 26 state bits and 16 literal length bits on the 7 a
		// flush leaves: one flush before the match length's 16 and the
		// offset's 31 bits.
		acc |= uint64(s.litLen-llBase[lc]) << (n & 63)
		n += uint(llBits[lc])
		flush()
		acc |= uint64(s.matchLen-3-mlBase[mc]) << (n & 63)
		n += uint(mlBits[mc])
		acc |= uint64(s.offBase) & lowMask[oc&31] << (n & 63)
		n += uint(oc)
		flush()
	}
	acc |= uint64(vML) & (1<<t.ml.log - 1) << (n & 63)
	n += uint(t.ml.log)
	acc |= uint64(vOF) & (1<<t.of.log - 1) << (n & 63)
	n += uint(t.of.log)
	flush()
	acc |= uint64(vLL) & (1<<t.ll.log - 1) << (n & 63)
	n += uint(t.ll.log)
	acc |= 1 << (n & 63) // the end mark
	n++
	flush()
	if n > 0 {
		pos++
	}
	return pos
}

// lowMask[k] has the low k bits set: a load where 1<<k - 1 costs three
// instructions and the shift count register.
var lowMask = func() (m [32]uint64) {
	for k := range m {
		m[k] = 1<<k - 1
	}
	return m
}()

// chooseTable picks the cheapest way to code one of the three code
// streams: RLE when it holds one symbol, else the predefined table or a
// table of its own, whichever costs fewer bits including the table's
// description, which it appends. first is any code of the stream (the
// RLE symbol).
func (e *Encoder) chooseTable(dst []byte, hist []uint32, nb int, own, def *fseTable, defNorm []int16, maxLog uint8, first uint8) (int, *fseTable, []byte) {
	if hist[first] == uint32(nb) {
		return modeRLE, &rleTable, append(dst, first)
	}
	maxSym := len(hist) - 1
	for maxSym > 0 && hist[maxSym] == 0 {
		maxSym--
	}
	defCost := math.Inf(1)
	if maxSym < len(defNorm) {
		defCost = tableCost(hist[:maxSym+1], defNorm, defLog(defNorm))
	}
	var norm [maxFSESymbols]int16
	log := optimalLog(maxLog, nb, maxSym)
	normalize(norm[:maxSym+1], hist[:maxSym+1], nb, log)
	hdrAt := len(dst)
	dst = writeNCount(dst, norm[:maxSym+1], log)
	if ownCost := tableCost(hist[:maxSym+1], norm[:maxSym+1], log) + float64(8*(len(dst)-hdrAt)); ownCost < defCost {
		own.build(norm[:maxSym+1], log)
		return modeCompressed, own, dst
	}
	return modePredefined, def, dst[:hdrAt]
}

// defLog is the accuracy log of a predefined distribution.
func defLog(norm []int16) uint8 {
	sum := 0
	for _, n := range norm {
		if n < 0 {
			n = -n
		}
		sum += int(n)
	}
	return uint8(bits.Len(uint(sum)) - 1)
}

// tableCost is about the bits coding hist's symbols costs with a table of
// distribution norm: a symbol of probability p costs -log2 p bits.
func tableCost(hist []uint32, norm []int16, log uint8) float64 {
	c := 0.0
	for s, h := range hist {
		if h == 0 {
			continue
		}
		n := norm[s]
		if n == 0 {
			return math.Inf(1)
		}
		if n < 0 {
			n = 1
		}
		c += float64(h) * (float64(log) - math.Log2(float64(n)))
	}
	return c
}
