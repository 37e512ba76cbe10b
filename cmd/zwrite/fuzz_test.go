package main

import (
	"io"
	"testing"

	"github.com/spf13/pflag"

	"github.com/zwrite/zwrite/internal/zarr"
)

// FuzzAppendFlags feeds arbitrary flag values to append's validation: it
// must never panic, and must either reject them as a usage error or yield
// a spec the format accepts and can describe in zarr.json.
func FuzzAppendFlags(f *testing.F) {
	f.Add("0,3,129,67", "4,2,32,32", "8,2,64,64", "uint16", "zstd", "t,z,y,x", "4GiB")
	f.Add("0", "7", "", "u8", "lz4", "", "")
	f.Add("17,13", "3,5", "6,10", "f64", "none", "a,b", "1")
	f.Add("9223372036854775807,2", "9223372036854775807,2", "", "u64", "zstd", "", "1e30")
	f.Add("0,1000000000,1000000000", "1,1000000000,1000000000", "", "u16", "zstd", "", "")
	f.Add(" 0 , 4", "2,,2", "x", "<u2", "BLOSC", "t,t", "-1")
	f.Fuzz(func(t *testing.T, shape, chunk, shard, dtype, codec, dims, pending string) {
		o := &appendOptions{}
		fs := pflag.NewFlagSet("append", pflag.ContinueOnError)
		fs.SetOutput(io.Discard)
		o.addFlags(fs, stdio{out: io.Discard, err: io.Discard})
		args := []string{"-o", "x", "--shape", shape, "--dtype", dtype, "--chunk", chunk, "--codec", codec}
		if shard != "" {
			args = append(args, "--shard", shard)
		}
		if dims != "" {
			args = append(args, "--dims", dims)
		}
		if pending != "" {
			args = append(args, "--max-pending", pending)
		}
		if err := fs.Parse(args); err != nil {
			return // pflag's own parse errors become usage errors in execute
		}
		err := o.validate(fs)
		if err != nil {
			if !isUsage(err) {
				t.Fatalf("validate(%q) = %v, not a usage error", args, err)
			}
			return
		}
		if err := o.spec.Validate(); err != nil {
			t.Fatalf("validate(%q) accepted a spec the format rejects: %v", args, err)
		}
		// The sizes the writer divides and allocates by never overflow.
		if o.spec.FrameBytes() <= 0 || o.spec.ChunkBytes() <= 0 || o.spec.ChunksPerShard() <= 0 ||
			o.spec.EpochFrames()*o.spec.FrameBytes() <= 0 {
			t.Fatalf("validate(%q) accepted a spec whose sizes overflow: frame %d, chunk %d, chunks per shard %d",
				args, o.spec.FrameBytes(), o.spec.ChunkBytes(), o.spec.ChunksPerShard())
		}
		if _, err := zarr.MarshalArray(&o.spec, 0); err != nil {
			t.Fatalf("validate(%q) accepted a spec that has no zarr.json: %v", args, err)
		}
	})
}
