package s3

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/sink/s3/s3test"
)

// storeUpload writes objects of size bytes each through a Store the way
// the pipeline's I/O lanes do (lanes goroutines, each writing its files
// in order in 1 MiB pieces) and returns the seconds it took, open and
// Finish excluded.
func storeUpload(tb testing.TB, st sink.Store, objects int, size int64, lanes int) float64 {
	tb.Helper()
	piece := randBytes(1<<20, 3)
	start := time.Now()
	var wg sync.WaitGroup
	for l := range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := l; i < objects; i += lanes {
				f, err := st.Sink().Create(fmt.Sprintf("c/%d", i))
				if err != nil {
					tb.Error(err)
					return
				}
				for n := int64(0); n < size; {
					k := min(int64(len(piece)), size-n)
					if _, err := f.Write(piece[:k]); err != nil {
						tb.Error(err)
						return
					}
					n += k
				}
				if err := f.Commit(); err != nil {
					tb.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start).Seconds()
}

// requestKinds counts a proxy's requests by kind.
func requestKinds(reqs []s3test.Request, under string) map[string]int {
	m := map[string]int{}
	for _, r := range reqs {
		if !strings.Contains(r.Path, under) {
			continue
		}
		q, _ := url.ParseQuery(r.Query)
		switch {
		case r.Method == "POST" && q.Has("uploads"):
			m["initiate"]++
		case r.Method == "PUT" && q.Has("partNumber"):
			m["part"]++
		case r.Method == "POST" && q.Has("uploadId"):
			m["complete"]++
		case r.Method == "PUT":
			m["put"]++
		}
	}
	return m
}

// TestCeilingSameRequests: Ceiling sends what a store sends for the same
// objects (one PUT below a part, else initiate, the same parts of the
// same size, complete), and leaves nothing behind.
func TestCeilingSameRequests(t *testing.T) {
	e := newTestEnv(t)
	px := s3test.NewProxy(t, e.srv.Endpoint)
	pe := e.with("AWS_ENDPOINT_URL", px.Endpoint)
	for _, tc := range []struct {
		name    string
		objects int
		size    int64
	}{{"small", 4, 1000}, {"multipart", 3, ps + ps/2}, {"exact parts", 2, 2 * ps}} {
		t.Run(tc.name, func(t *testing.T) {
			st := pe.mustOpen(t, "cmp-"+tc.name, sink.Options{})
			px.Requests()
			storeUpload(t, st, tc.objects, tc.size, 2)
			want := requestKinds(px.Requests(), "/c/")
			if err := st.Finish(); err != nil {
				t.Fatal(err)
			}
			res, err := ceiling(context.Background(), CeilingConfig{Target: "s3://bkt/ceil/run.zarr", Sizes: sameSizes(tc.objects, tc.size), Lanes: 2},
				pe.getenv, pe.tune)
			if err != nil {
				t.Fatal(err)
			}
			got := requestKinds(px.Requests(), ".zwrite-ceiling-")
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("ceiling sent %v, the store %v", got, want)
			}
			if res.Bytes != int64(tc.objects)*tc.size || res.Objects != tc.objects || res.PartSize != ps || res.Parts != poolParts(&pe.tune, ps) ||
				res.Lanes != 2 || res.GBps <= 0 || !strings.HasPrefix(res.Scratch, "s3://bkt/ceil/.run.zarr.zwrite-ceiling-") {
				t.Errorf("result %+v", res)
			}
			if left := e.keys(t, "ceil"); len(left) != 0 {
				t.Errorf("ceiling left %v", left)
			}
			e.waitNoUploads(t)
		})
	}
	if _, err := ceiling(context.Background(), CeilingConfig{Target: "s3://no-such-bucket/x", Sizes: []int64{10}}, pe.getenv, pe.tune); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("ceiling on a missing bucket: %v", err)
	}
	for _, bad := range []CeilingConfig{{Target: "s3://bkt/x"}, {Target: "s3://bkt/x", Sizes: []int64{-1}}, {Target: "s3://bkt/x", Sizes: []int64{1}, Lanes: -1}} {
		if _, err := ceiling(context.Background(), bad, pe.getenv, pe.tune); err == nil {
			t.Errorf("ceiling %+v: no error", bad)
		}
	}
}

func sameSizes(n int, size int64) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = size
	}
	return s
}

// TestScratchPrefix: the ceiling's objects go beside the store, hidden,
// never inside it (but for a store at the bucket's root).
func TestScratchPrefix(t *testing.T) {
	for _, tc := range []struct{ prefix, want string }{
		{"", ".zwrite-ceiling-r"},
		{"b.zarr", ".b.zarr.zwrite-ceiling-r"},
		{"runs/day1/b.zarr", "runs/day1/.b.zarr.zwrite-ceiling-r"},
	} {
		if got := scratchPrefix(tc.prefix, "r"); got != tc.want {
			t.Errorf("scratchPrefix(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
}

// BenchmarkStoreVsCeiling compares the Store's upload rate with the
// same-run ceiling (Ceiling: the same objects, part size and parts in
// flight through minio-go alone) on a local versitygw:
//
//	go test -run '^$' -bench StoreVsCeiling ./internal/sink/s3
func BenchmarkStoreVsCeiling(b *testing.B) {
	srv := s3test.Start(b)
	srv.MakeBucket("bkt")
	env := srv.Env()
	env["HOME"] = b.TempDir()
	getenv := func(k string) string { return env[k] }
	const objects, size, lanes = 16, 3 * ps, 8
	b.SetBytes(objects * size)
	var storeSecs, ceilSecs float64
	for i := 0; b.Loop(); i++ {
		u, _ := url.Parse(fmt.Sprintf("s3://bkt/run%d", i))
		st, err := openStore(u, sink.Options{}, getenv, defaultTuning)
		if err != nil {
			b.Fatal(err)
		}
		storeSecs += storeUpload(b, st, objects, size, lanes)
		if err := st.Finish(); err != nil {
			b.Fatal(err)
		}
		res, err := ceiling(context.Background(), CeilingConfig{Target: u.String(), Sizes: sameSizes(objects, size), Lanes: lanes}, getenv, defaultTuning)
		if err != nil {
			b.Fatal(err)
		}
		ceilSecs += res.Seconds
	}
	n := float64(b.N)
	b.ReportMetric(objects*size*n/storeSecs/1e9, "store-GB/s")
	b.ReportMetric(objects*size*n/ceilSecs/1e9, "ceiling-GB/s")
	b.ReportMetric(ceilSecs/storeSecs, "store/ceiling")
}
