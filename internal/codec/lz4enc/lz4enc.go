package lz4enc

import (
	"math/bits"
	"unsafe"

	"github.com/pierrec/lz4/v4"
)

// Constants of lz4.c (names as there).
const (
	hashLog      = 13 // LZ4_HASHLOG+1: the byU16 table at LZ4_MEMORY_USAGE 14
	tableSize    = 1 << hashLog
	minMatch     = 4  // MINMATCH
	mfLimit      = 12 // MFLIMIT: no match starts in the last 12 bytes
	lastLiterals = 5  // LASTLITERALS: the last 5 bytes are literals
	minLength    = mfLimit + 1
	skipTrigger  = 6 // LZ4_skipTrigger
	runMask      = 0xF
	// limit16 is LZ4_64Klimit: shorter inputs use the 16-bit table, and
	// their positions are all within LZ4_DISTANCE_MAX of each other.
	limit16  = 64<<10 + 11
	accelMax = 65537 // LZ4_ACCELERATION_MAX
)

// Bound is LZ4_compressBound: with at least this much room the output
// always fits.
func Bound(n int) int { return n + n/255 + 16 }

// Compressor compresses LZ4 blocks. Reuse one per goroutine: it holds the
// 16 KiB table (cleared per block, as lz4.c's LZ4_initStream does) and,
// once a block of limit16 bytes or more was seen, pierrec's compressor.
// The zero value is ready to use; not safe for concurrent use.
type Compressor struct {
	table [tableSize]uint16
	big   *lz4.CompressorCCompat
}

// CompressBlock writes src as one LZ4 block into dst with lz4.c's
// acceleration (values below 1 mean 1) and returns its size, or 0 when it
// does not fit in dst. It returns 0 in exactly the cases lz4.c's
// LZ4_compress_fast does for a dst of that capacity (its checks are
// conservative: a block may be refused a few bytes before it would
// overflow), which c-blosc's raw-stream decision depends on.
func (c *Compressor) CompressBlock(src, dst []byte, accel int) int {
	accel = min(max(accel, 1), accelMax)
	if len(src) >= limit16 {
		if c.big == nil {
			c.big = new(lz4.CompressorCCompat)
		}
		c.big.Acceleration = accel
		n, err := c.big.CompressBlock(src, dst)
		if err != nil {
			return 0
		}
		return n
	}
	if len(src) == 0 {
		if len(dst) == 0 {
			return 0
		}
		dst[0] = 0
		return 1
	}
	c.table = [tableSize]uint16{}
	return c.compress16(src, dst, accel)
}

// hash is LZ4_hash4 for the byU16 table.
func hash(v uint32) uint32 { return v * 2654435761 >> (32 - hashLog) }

// compress16 is LZ4_compress_generic for byU16, no dictionary, with
// limitedOutput when dst is shorter than Bound(len(src)); 1 <= len(src) <
// limit16.
//
// It reads src through an unsafe pointer, to drop the bounds checks of the
// search loop, whose every step is a few loads. Sound because every load
// is inside src (each says why where it happens). Table indices are
// masked 13-bit hashes, which need no checks either. Writes to dst are
// bounds-checked slice stores, but for the 8-byte literal copy, which is
// checked once per literal run.
func (c *Compressor) compress16(src, dst []byte, accel int) int {
	n := len(src)
	limited := len(dst) < Bound(n)
	sp := unsafe.Pointer(unsafe.SliceData(src))
	t := &c.table

	var anchor, ip, di, match, token int
	// Positions searched stop at mfLimitPlusOne = n-11, so 4-byte loads at
	// them end at n-8; matches stop at matchLimit, 8-byte loads there end
	// before n.
	mfLimitPlusOne := n - mfLimit + 1
	matchLimit := n - lastLiterals
	var forwardH uint32
	if n < minLength {
		goto last
	}
	t[hash(load32(sp, 0))&(tableSize-1)] = uint16(0)
	ip = 1
	forwardH = hash(load32(sp, ip))
	for {
		ip, match = search(sp, t, ip, forwardH, accel, mfLimitPlusOne)
		if match < 0 {
			goto last
		}
		// Catch up: extend the match backwards (ip > anchor holds here).
		for ip > anchor && match > 0 && src[ip-1] == src[match-1] {
			ip--
			match--
		}
		// Literals.
		{
			lit := ip - anchor
			token = di
			di++
			if limited && di+lit+(2+1+lastLiterals)+lit/255 > len(dst) {
				return 0
			}
			if lit >= runMask {
				dst[token] = runMask << 4
				di = putLen(dst, di, lit)
			} else {
				dst[token] = byte(lit << 4)
			}
			// lz4.c's LZ4_wildCopy8: whole words, up to 7 bytes past the
			// literals, which later output overwrites. Inside dst: limited,
			// the check above leaves 8 bytes after them; otherwise
			// len(dst) >= Bound(n) covers it as lz4.c relies on. The
			// loads end at most 7 bytes past ip <= n-12.
			if lit > 0 {
				_ = dst[di+lit+6] // the last word's last byte: checked once
			}
			dp := unsafe.Pointer(unsafe.SliceData(dst))
			for i := 0; i < lit; i += 8 {
				*(*uint64)(unsafe.Add(dp, di+i)) = load64(sp, anchor+i)
			}
			di += lit
		}
	nextMatch:
		// Offset, then the match length past its first 4 bytes.
		{
			off := ip - match
			dst[di] = byte(off)
			dst[di+1] = byte(off >> 8)
			di += 2
			// The first 8 bytes inline: most matches in shuffled planes
			// are short. ip+12 <= n-7 here, so the loads are inside src.
			var ml int
			if d := load64(sp, ip+minMatch) ^ load64(sp, match+minMatch); d != 0 && ip+minMatch+8 <= matchLimit {
				ml = bits.TrailingZeros64(d) >> 3
			} else {
				ml = countMatch(sp, ip+minMatch, match+minMatch, matchLimit)
			}
			ip += ml + minMatch
			if ml < runMask {
				if limited && di+(1+lastLiterals) > len(dst) {
					return 0
				}
				dst[token] += byte(ml)
			} else {
				if limited && di+(1+lastLiterals)+(ml+240)/255 > len(dst) {
					return 0
				}
				dst[token] += runMask
				di = putLen(dst, di, ml)
			}
		}
		anchor = ip
		if ip >= mfLimitPlusOne {
			break
		}
		// One load for the words at ip-2 and ip: ip-2 > the match start
		// >= 1, ip+6 < n-5, so it is inside src.
		{
			v := load64(sp, ip-2)
			t[hash(uint32(v))&(tableSize-1)] = uint16(ip - 2)
			cur := uint32(v >> 16)
			h := hash(cur)
			m := int(t[h&(tableSize-1)])
			t[h&(tableSize-1)] = uint16(ip)
			if load32(sp, m) == cur {
				token = di
				dst[di] = 0
				di++
				match = m
				goto nextMatch
			}
		}
		ip++
		forwardH = hash(load32(sp, ip))
	}
last:
	lastRun := n - anchor
	if limited && di+lastRun+1+(lastRun+255-runMask)/255 > len(dst) {
		return 0
	}
	if lastRun >= runMask {
		dst[di] = runMask << 4
		di = putLen(dst, di+1, lastRun)
	} else {
		dst[di] = byte(lastRun << 4)
		di++
	}
	di += copy(dst[di:], src[anchor:])
	return di
}

// putLen writes the bytes that follow a token's 15 for a run of l >=
// runMask (255s, then the rest) at dst[di:] and returns the next index.
func putLen(dst []byte, di, l int) int {
	for l -= runMask; l >= 255; l -= 255 {
		dst[di] = 255
		di++
	}
	dst[di] = byte(l)
	return di + 1
}

// search is lz4.c's match search from ip, whose hash is h: it returns the
// position that matches an earlier one (match), or match -1 once the
// positions run past limit
// (mfLimitPlusOne). The step grows by one every 64 misses (accel*64 to
// start, lz4.c's searchMatchNb). A function of its own so that its few
// variables stay in registers: inside compress16, the loop-carried ip and
// step were spilled to the stack every step.
//
//go:noinline
func search(sp unsafe.Pointer, t *[tableSize]uint16, ip int, h uint32, accel, limit int) (int, int) {
	fwd := ip
	step := 1
	searchMatchNb := accel << skipTrigger
	for {
		cur := fwd
		fwd += step
		step = searchMatchNb >> skipTrigger
		searchMatchNb++
		if fwd > limit {
			return cur, -1
		}
		match := int(t[h&(tableSize-1)])
		t[h&(tableSize-1)] = uint16(cur)
		next := hash(load32(sp, fwd))
		// match < cur <= n-12, fwd <= n-11: the loads are inside src.
		if load32(sp, match) == load32(sp, cur) {
			return cur, match
		}
		h = next
	}
}

// load32 and load64 read the word at byte i of the array at p; callers
// keep i inside it.
func load32(p unsafe.Pointer, i int) uint32 { return *(*uint32)(unsafe.Add(p, i)) }
func load64(p unsafe.Pointer, i int) uint64 { return *(*uint64)(unsafe.Add(p, i)) }

// countMatch is LZ4_count: the length of the common prefix of the bytes at
// in (up to limit) and at match < in. Loads stay below limit <= len(src)
// for in, and below in for match.
func countMatch(sp unsafe.Pointer, in, match, limit int) int {
	start := in
	for in+8 <= limit {
		a := *(*uint64)(unsafe.Add(sp, in))
		b := *(*uint64)(unsafe.Add(sp, match))
		if d := a ^ b; d != 0 {
			return in + bits.TrailingZeros64(d)>>3 - start
		}
		in += 8
		match += 8
	}
	if in+4 <= limit && *(*uint32)(unsafe.Add(sp, in)) == *(*uint32)(unsafe.Add(sp, match)) {
		in += 4
		match += 4
	}
	if in+2 <= limit && *(*uint16)(unsafe.Add(sp, in)) == *(*uint16)(unsafe.Add(sp, match)) {
		in += 2
		match += 2
	}
	if in < limit && *(*byte)(unsafe.Add(sp, in)) == *(*byte)(unsafe.Add(sp, match)) {
		in++
	}
	return in - start
}
