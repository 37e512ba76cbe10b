package zstdenc

import "math/bits"

// Sequence code tables of RFC 8878 §3.1.1.3.2.1.1.

// llBits and mlBits are the extra bits of each literal length and match
// length code; llBase and mlBase (match length minus 3) the first value
// each code stands for; 64 entries (zero past the last code) so that an
// index masked to 6 bits needs no bounds check and no modulo.
var (
	llBits = [64]uint8{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1,
		1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	llBase = [64]uint32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18,
		20, 22, 24, 28, 32, 40, 48, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536}
	mlBits = [64]uint8{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1,
		2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	mlBase = [64]uint32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
		18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 34, 36, 38,
		40, 44, 48, 56, 64, 80, 96, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536}
)

// Predefined distributions (RFC 8878 §3.1.1.3.2.2).
var (
	llDefaultNorm = []int16{4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 2,
		2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1, -1, -1, -1, -1}
	mlDefaultNorm = []int16{1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1}
	ofDefaultNorm = []int16{1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1}
)

const (
	llDefaultLog = 6
	mlDefaultLog = 6
	ofDefaultLog = 5
	// Largest accuracy logs the format allows for custom tables.
	llMaxLog = 9
	mlMaxLog = 9
	ofMaxLog = 8
	// Largest codes: 35, 52, and 31 for offsets (our windows keep offset
	// codes far below).
	llMaxCode = 35
	mlMaxCode = 52
	ofMaxCode = 31
)

var llDefault, mlDefault, ofDefault fseTable

func init() {
	llDefault.build(llDefaultNorm, llDefaultLog)
	mlDefault.build(mlDefaultNorm, mlDefaultLog)
	ofDefault.build(ofDefaultNorm, ofDefaultLog)
}

// llCodeSmall and mlCodeSmall are the codes of the lengths the
// logarithm rule does not cover.
var llCodeSmall [64]uint8
var mlCodeSmall [128]uint8

func init() {
	for c := 0; c < 25; c++ {
		for v := llBase[c]; v < llBase[c+1] && v < 64; v++ {
			llCodeSmall[v] = uint8(c)
		}
	}
	for c := 0; c < 43; c++ {
		for v := mlBase[c]; v < mlBase[c+1] && v < 128; v++ {
			mlCodeSmall[v] = uint8(c)
		}
	}
}

// llCode is the code of a literal length.
func llCode(ll uint32) uint8 {
	if ll < 64 {
		return llCodeSmall[ll]
	}
	return uint8(bits.Len32(ll) - 1 + 19)
}

// mlCode is the code of a match length minus 3.
func mlCode(mb uint32) uint8 {
	if mb < 128 {
		return mlCodeSmall[mb]
	}
	return uint8(bits.Len32(mb) - 1 + 36)
}
