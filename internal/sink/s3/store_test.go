package s3

import (
	"context"
	"errors"
	"net/url"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/sink/s3/s3test"
)

const (
	arrayMeta = `{"zarr_format": 3, "node_type": "array", "shape": [1]}`
	groupMeta = `{"zarr_format": 3, "node_type": "group"}`
)

// commitFile writes one object through the store's sink.
func commitFile(t *testing.T, st sink.Store, key, data string) {
	t.Helper()
	if err := st.Sink().Put(key, []byte(data)); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// TestOpenErrors: wrong credentials, a missing bucket and an unreachable
// endpoint are told apart before anything is written, with typed errors
// that say what to do.
func TestOpenErrors(t *testing.T) {
	e := newTestEnv(t)
	tests := []struct {
		name string
		env  *testEnv
		url  string
		as   any
		want string
	}{
		{"wrong secret", e.with("AWS_SECRET_ACCESS_KEY", "wrong"), "s3://bkt/x", new(*CredentialsError), "refused the credentials from AWS_ACCESS_KEY_ID"},
		{"unknown key", e.with("AWS_ACCESS_KEY_ID", "nobody"), "s3://bkt/x", new(*CredentialsError), "check the access key ID and secret access key"},
		{"missing bucket", e, "s3://no-such-bucket/x", new(*BucketError), `bucket "no-such-bucket" does not exist at ` + e.srv.Endpoint},
		{"unreachable", e.with("AWS_ENDPOINT_URL", "http://127.0.0.1:1"), "s3://bkt/x", new(*EndpointError), "cannot reach the S3 endpoint http://127.0.0.1:1 (from AWS_ENDPOINT_URL): dial tcp 127.0.0.1:1: connect: connection refused, still after 3 tries"},
		{"no credentials", e.with("AWS_ACCESS_KEY_ID", "", "AWS_SECRET_ACCESS_KEY", ""), "s3://bkt/x", nil, "no S3 credentials"},
		{"bad url", e, "s3://bkt/a/../b", nil, "clean key"},
		{"too large an object", e, "s3://bkt/x", nil, "smaller shards"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			o := sink.Options{}
			if tc.name == "too large an object" {
				o.MaxObjectSize = 6 << 40
			}
			within(t, 10*time.Second, "open", func() { _, err = openStore(u, o, tc.env.getenv, tc.env.tune) })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("open %s: %v; want an error with %q", tc.url, err, tc.want)
			}
			if tc.as != nil && !errors.As(err, tc.as) {
				t.Fatalf("open %s: %T is not a %T", tc.url, err, tc.as)
			}
			if _, rerr := openReader(u, "", tc.env.getenv, tc.env.tune); tc.as != nil && !errors.As(rerr, tc.as) {
				t.Fatalf("read %s: %v, want a %T", tc.url, rerr, tc.as)
			}
		})
	}
	if got := e.keys(t, ""); len(got) != 0 {
		t.Fatalf("failed opens left objects: %v", got)
	}
}

// TestExistingOutput: a prefix holding anything is refused without
// Overwrite; with it, only a Zarr store whose keys are all Zarr's is
// taken, and anything else is refused naming what would be lost, with
// nothing touched.
func TestExistingOutput(t *testing.T) {
	tests := []struct {
		name    string
		objs    map[string]string
		reason  string   // NotStoreError.Reason wanted, or ""
		foreign []string // NotStoreError.Foreign wanted
	}{
		{"array store", map[string]string{"zarr.json": arrayMeta, "c/0/1": "x", "c/1/0": "y"}, "", nil},
		{"group with array", map[string]string{"zarr.json": groupMeta, "a/zarr.json": arrayMeta, "a/c/0": "x"}, "", nil},
		{"no zarr.json", map[string]string{"data.bin": "x"}, "it has no zarr.json", nil},
		{"not zarr", map[string]string{"zarr.json": `{"zarr_format": 2}`}, "not a Zarr v3", nil},
		{"broken zarr.json", map[string]string{"zarr.json": `{`}, "not JSON", nil},
		{"foreign files", map[string]string{"zarr.json": arrayMeta, "c/0": "x", "notes.txt": "mine", "c/readme": "x", "raw/a.bin": "x"},
			"", []string{"c/readme", "notes.txt", "raw/"}},
		{"group child no node", map[string]string{"zarr.json": groupMeta, "a/zarr.json": arrayMeta, "b/file": "x"}, "", []string{"b/"}},
		{"array in array", map[string]string{"zarr.json": arrayMeta, "sub/zarr.json": arrayMeta}, "", []string{"sub/"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			objs := map[string]string{}
			for k, v := range tc.objs {
				objs["out/"+k] = v
			}
			objs["out-sibling"] = "untouched"
			e.put(t, objs)
			before := e.keys(t, "")
			_, err := e.open("out", sink.Options{})
			var ee *sink.ExistsError
			if !errors.As(err, &ee) {
				t.Fatalf("open without Overwrite: %v, want ExistsError", err)
			}
			st, err := e.open("out", sink.Options{Overwrite: true})
			if tc.reason == "" && tc.foreign == nil {
				if err != nil {
					t.Fatalf("overwrite of a store: %v", err)
				}
				st.Close()
				if got := e.keys(t, ""); !slices.Equal(got, before) {
					t.Fatalf("a store opened for overwrite and closed unused changed: %v, was %v", got, before)
				}
				return
			}
			var ns *sink.NotStoreError
			if !errors.As(err, &ns) {
				t.Fatalf("overwrite: %v, want NotStoreError", err)
			}
			if tc.reason != "" && !strings.Contains(ns.Reason, tc.reason) {
				t.Errorf("reason %q, want %q", ns.Reason, tc.reason)
			}
			if tc.foreign != nil && (!reflect.DeepEqual(ns.Foreign, tc.foreign) || ns.N != len(tc.foreign)) {
				t.Errorf("foreign %v (%d), want %v", ns.Foreign, ns.N, tc.foreign)
			}
			if got := e.keys(t, ""); !slices.Equal(got, before) {
				t.Fatalf("a refused overwrite changed the bucket: %v, was %v", got, before)
			}
		})
	}
}

// TestOverwriteReplaces: the old store's objects go before the new run's
// first object, all of them (also keys the new run never writes), so the
// stores never mix; a sibling prefix sharing the name's start is not
// touched.
func TestOverwriteReplaces(t *testing.T) {
	e := newTestEnv(t)
	e.put(t, map[string]string{"out/zarr.json": arrayMeta, "out/c/0/0": "old", "out/c/9/9": "old-only", "outer/keep": "x"})
	e.put(t, map[string]string{"out/.zwrite-lock": ""}) // a crashed writer's garbled lock
	st := e.mustOpen(t, "out", sink.Options{Overwrite: true})
	if !st.Replacing() {
		t.Fatal("Replacing is false before the old store is touched")
	}
	if len(st.Notes()) == 0 {
		t.Error("no note about the stale lock taken over")
	}
	commitFile(t, st, "zarr.json", `{"new": 1}`)
	if st.Replacing() {
		t.Fatal("Replacing is still true after the old store was removed")
	}
	if got := e.keys(t, "out"); !slices.Equal(got, []string{".zwrite-lock", "zarr.json"}) {
		t.Fatalf("after the first new object: %v", got)
	}
	commitFile(t, st, "c/0/0", "new")
	if err := st.Finish(); err != nil {
		t.Fatal(err)
	}
	if got := e.keys(t, ""); !slices.Equal(got, []string{"out/c/0/0", "out/zarr.json", "outer/keep"}) {
		t.Fatalf("after Finish: %v", got)
	}
	if got := string(e.read(t, "out/c/0/0")); got != "new" {
		t.Fatalf("c/0/0 = %q", got)
	}
}

// TestOverwriteRecheck: something put into the old store after Open is
// seen when the old store is about to be removed, and nothing is removed.
func TestOverwriteRecheck(t *testing.T) {
	e := newTestEnv(t)
	e.put(t, map[string]string{"out/zarr.json": arrayMeta, "out/c/0": "old"})
	st := e.mustOpen(t, "out", sink.Options{Overwrite: true})
	e.put(t, map[string]string{"out/late.txt": "mine"})
	_, err := st.Sink().Create("zarr.json")
	var ns *sink.NotStoreError
	if !errors.As(err, &ns) || !strings.Contains(err.Error(), "late.txt") {
		t.Fatalf("Create after a foreign object appeared: %v, want a NotStoreError naming it", err)
	}
	st.Abandon(false)
	if got := e.keys(t, "out"); !slices.Equal(got, []string{"c/0", "late.txt", "zarr.json"}) {
		t.Fatalf("old store changed: %v", got)
	}
}

// TestAbandon: without keep, a new store loses what it committed (and
// nothing else); with keep, it stays; a resumed node keeps everything.
func TestAbandon(t *testing.T) {
	e := newTestEnv(t)
	e.put(t, map[string]string{"n/other-writer": "x"}) // not ours: never removed
	for _, keep := range []bool{false, true} {
		prefix := map[bool]string{false: "drop", true: "keep"}[keep]
		st := e.mustOpen(t, prefix, sink.Options{})
		commitFile(t, st, "zarr.json", arrayMeta)
		commitFile(t, st, "c/0", "data")
		f, _ := st.Sink().Create("c/1")
		f.Write(randBytes(ps+1, 1)) // in flight: aborted by Abandon
		if kept, err := st.Abandon(keep); err != nil || kept != "" {
			t.Fatalf("Abandon(%v) = %q, %v", keep, kept, err)
		}
		want := []string{}
		if keep {
			want = []string{"c/0", "zarr.json"}
		}
		if got := e.keys(t, prefix); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("Abandon(%v) left %v, want %v", keep, got, want)
		}
	}
	st := e.mustOpen(t, "keep", sink.Options{Resume: true})
	commitFile(t, st, "c/2", "more")
	st.Abandon(false)
	if got := e.keys(t, "keep"); !slices.Equal(got, []string{"c/0", "c/2", "zarr.json"}) {
		t.Errorf("a resumed node after Abandon(false): %v", got)
	}
	e.waitNoUploads(t)
	if got := e.keys(t, "n"); !slices.Equal(got, []string{"other-writer"}) {
		t.Errorf("another prefix changed: %v", got)
	}
}

// TestLock: one writer per node. A second Open is refused while the
// first runs and succeeds after it; a dead writer's lock of this host is
// taken over with a note; another host's lock needs BreakLock.
func TestLock(t *testing.T) {
	e := newTestEnv(t)
	first := e.mustOpen(t, "l", sink.Options{})
	lock := sink.ParseLockInfo(e.read(t, "l/.zwrite-lock"))
	if self := sink.SelfLockInfo(); lock.PID != self.PID || lock.Host != self.Host || lock.Start.IsZero() {
		t.Fatalf("lock records %+v, want this process %+v", lock, self)
	}
	_, err := e.open("l", sink.Options{})
	var le *sink.LockedError
	if !errors.As(err, &le) || le.Holder.PID != lock.PID {
		t.Fatalf("second writer: %v, want LockedError naming pid %d", err, lock.PID)
	}
	_, err = e.open("l", sink.Options{Overwrite: true, BreakLock: true})
	if !errors.As(err, &le) {
		t.Fatalf("second writer with BreakLock: %v, want LockedError (a live writer of this host)", err)
	}
	if err := first.Finish(); err != nil {
		t.Fatal(err)
	}
	if got := e.keys(t, "l"); len(got) != 0 {
		t.Fatalf("lock not released by Finish: %v", got)
	}
	second := e.mustOpen(t, "l", sink.Options{})
	second.Close()

	// A lock left by a process of this host that is gone.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := sink.SelfLockInfo()
	stale.PID = dead.ProcessState.Pid()
	e.put(t, map[string]string{"d/.zwrite-lock": string(stale.Bytes())})
	st := e.mustOpen(t, "d", sink.Options{})
	if n := st.Notes(); len(n) != 1 || !strings.Contains(n[0], "no longer running") {
		t.Fatalf("notes %q, want one about the dead writer's lock", n)
	}
	if got := sink.ParseLockInfo(e.read(t, "d/.zwrite-lock")); got.PID != sink.SelfLockInfo().PID {
		t.Fatalf("lock after take-over: %+v", got)
	}
	st.Close()

	// Another host's lock.
	other := sink.SelfLockInfo()
	other.Host = "elsewhere"
	e.put(t, map[string]string{"f/.zwrite-lock": string(other.Bytes())})
	_, err = e.open("f", sink.Options{})
	var fe *sink.ForeignLockError
	if !errors.As(err, &fe) || fe.Holder.Host != "elsewhere" || !strings.Contains(fe.Path, "s3://bkt/f/.zwrite-lock") {
		t.Fatalf("foreign lock: %v, want ForeignLockError naming the lock object", err)
	}
	st = e.mustOpen(t, "f", sink.Options{BreakLock: true})
	if n := st.Notes(); len(n) != 1 || !strings.Contains(n[0], "broke the lock") {
		t.Fatalf("notes %q after BreakLock", n)
	}
	st.Close()
	if got := e.keys(t, "f"); len(got) != 0 {
		t.Fatalf("after Close: %v", got)
	}

	// A writer whose lock was broken by another does not remove the
	// other's lock when it ends.
	st = e.mustOpen(t, "b", sink.Options{})
	e.put(t, map[string]string{"b/.zwrite-lock": string(other.Bytes())})
	if err := st.Finish(); err != nil {
		t.Fatal(err)
	}
	if got := sink.ParseLockInfo(e.read(t, "b/.zwrite-lock")); got.Host != "elsewhere" {
		t.Fatalf("the breaker's lock was removed or changed: %+v", got)
	}
}

// TestLockRace: of several writers opening one node at once, exactly
// one gets it.
func TestLockRace(t *testing.T) {
	e := newTestEnv(t)
	const n = 6
	errs := make(chan error, n)
	stores := make(chan sink.Store, n)
	for range n {
		go func() {
			st, err := e.open("race", sink.Options{})
			if err == nil {
				stores <- st
			}
			errs <- err
		}()
	}
	won := 0
	for range n {
		err := <-errs
		var le *sink.LockedError
		switch {
		case err == nil:
			won++
		case !errors.As(err, &le):
			t.Errorf("open: %v, want LockedError", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d writers got the lock, want 1", won)
	}
	(<-stores).Close()
}

// TestNodeInGroup: Options.Path writes a node inside a group store:
// missing parents become groups, existing groups are kept as they are,
// an array or a prefix holding other objects refuses to be a parent.
func TestNodeInGroup(t *testing.T) {
	e := newTestEnv(t)
	st := e.mustOpen(t, "g.zarr", sink.Options{Path: "cam1/raw"})
	if st.Location() != "s3://bkt/g.zarr/cam1/raw" {
		t.Errorf("Location %q", st.Location())
	}
	commitFile(t, st, "zarr.json", arrayMeta)
	if err := st.Finish(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"g.zarr/zarr.json", "g.zarr/cam1/zarr.json"} {
		if kind, err := sink.ParseNodeKind(e.read(t, k)); err != nil || kind != "group" {
			t.Errorf("%s: %q, %v; want a group", k, kind, err)
		}
	}
	// An existing group with attributes is never replaced.
	custom := `{"zarr_format": 3, "node_type": "group", "attributes": {"mine": 1}}`
	e.put(t, map[string]string{"g.zarr/zarr.json": custom})
	st = e.mustOpen(t, "g.zarr", sink.Options{Path: "cam2"})
	st.Close()
	if got := string(e.read(t, "g.zarr/zarr.json")); got != custom {
		t.Errorf("root group rewritten: %q", got)
	}
	tests := []struct {
		name, prefix, path string
		objs               map[string]string
		want               string
	}{
		{"array parent", "a.zarr", "x", map[string]string{"a.zarr/zarr.json": arrayMeta}, "it is a Zarr array, which cannot hold other nodes"},
		{"foreign parent", "f.zarr", "x", map[string]string{"f.zarr/notes.txt": "mine"}, "holds other objects (notes.txt)"},
		{"broken parent", "b.zarr", "x", map[string]string{"b.zarr/zarr.json": "{"}, "not JSON"},
		{"resume without groups", "r.zarr", "x", nil, "it has no zarr.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.put(t, tc.objs)
			_, err := e.open(tc.prefix, sink.Options{Path: tc.path, Resume: tc.name == "resume without groups"})
			var ns *sink.NotStoreError
			if !errors.As(err, &ns) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("open: %v, want a NotStoreError with %q", err, tc.want)
			}
			if got := e.keys(t, tc.prefix); len(got) != len(tc.objs) {
				t.Fatalf("refused open changed %s: %v", tc.prefix, got)
			}
		})
	}
}

// TestGroupRace: a parent group another run creates between our check
// and our PUT is kept as it is (If-None-Match), never replaced.
func TestGroupRace(t *testing.T) {
	e := newTestEnv(t)
	px := s3test.NewProxy(t, e.srv.Endpoint)
	pe := e.with("AWS_ENDPOINT_URL", px.Endpoint)
	theirs := `{"zarr_format": 3, "node_type": "group", "attributes": {"by": "the other run"}}`
	var once sync.Once
	px.After(func(r s3test.Request) {
		if r.Method == "GET" && r.Path == "/bkt/gr.zarr/zarr.json" {
			once.Do(func() { e.put(t, map[string]string{"gr.zarr/zarr.json": theirs}) })
		}
	})
	st := pe.mustOpen(t, "gr.zarr", sink.Options{Path: "cam"})
	st.Close()
	if got := string(e.read(t, "gr.zarr/zarr.json")); got != theirs {
		t.Fatalf("the other run's group was replaced: %q", got)
	}
}

// TestResume: Resume needs an existing Zarr node of Zarr's keys only; it
// aborts the unfinished uploads a crashed writer left, and says so.
func TestResume(t *testing.T) {
	e := newTestEnv(t)
	var nothing *sink.NothingToResumeError
	if _, err := e.open("none", sink.Options{Resume: true}); !errors.As(err, &nothing) {
		t.Fatalf("resume of nothing: %v, want a NothingToResumeError", err)
	}
	e.put(t, map[string]string{"r/zarr.json": arrayMeta, "r/c/0": "x"})
	core := minio.Core{Client: e.srv.Client()}
	if _, err := core.NewMultipartUpload(context.Background(), e.bucket, "r/c/1", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := core.NewMultipartUpload(context.Background(), e.bucket, "rx/c/1", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	st := e.mustOpen(t, "r", sink.Options{Resume: true})
	if n := st.Notes(); len(n) != 1 || !strings.Contains(n[0], "aborted 1 unfinished uploads") {
		t.Fatalf("notes %q", n)
	}
	if got := e.uploads(t); !slices.Equal(got, []string{"rx/c/1"}) {
		t.Fatalf("uploads after resume: %v, want only the other prefix's", got)
	}
	st.Close()
	e.put(t, map[string]string{"r/extra.txt": "x"})
	_, err := e.open("r", sink.Options{Resume: true})
	var ns *sink.NotStoreError
	if !errors.As(err, &ns) || ns.N != 1 {
		t.Fatalf("resume of a node with a foreign key: %v", err)
	}
}

// TestSize sums the node's objects, the lock excluded.
func TestSize(t *testing.T) {
	e := newTestEnv(t)
	st := e.mustOpen(t, "s", sink.Options{})
	commitFile(t, st, "zarr.json", "12345")
	commitFile(t, st, "c/0/0", strings.Repeat("x", 1000))
	n, err := st.Size()
	if err != nil || n != 1005 {
		t.Fatalf("Size = %d, %v; want 1005", n, err)
	}
}

// TestLockVerify: a lock overwritten by another writer right after our
// PUT (a server without conditional writes, or a race) is seen when the
// lock is read back: the Open is refused, not two writers let in.
func TestLockVerify(t *testing.T) {
	e := newTestEnv(t)
	px := s3test.NewProxy(t, e.srv.Endpoint)
	pe := e.with("AWS_ENDPOINT_URL", px.Endpoint)
	other := sink.SelfLockInfo()
	other.Host = "racer"
	for _, start := range []string{"new", "stale", "changed before take-over"} {
		t.Run(start, func(t *testing.T) {
			prefix := "lv-" + strings.ReplaceAll(start, " ", "-")
			if start != "new" {
				dead := sink.SelfLockInfo()
				dead.PID = 1 << 30 // no such process
				e.put(t, map[string]string{prefix + "/.zwrite-lock": string(dead.Bytes())})
			}
			// The racer writes its lock right after our PUT, or (changed
			// before take-over) right after we read the stale lock and
			// before our take-over, which must then not replace it.
			method := "PUT"
			if start == "changed before take-over" {
				method = "GET"
			}
			var once sync.Once
			px.After(func(r s3test.Request) {
				if r.Method == method && strings.HasSuffix(r.Path, "/.zwrite-lock") {
					once.Do(func() { e.put(t, map[string]string{prefix + "/.zwrite-lock": string(other.Bytes())}) })
				}
			})
			defer px.After(nil)
			_, err := pe.open(prefix, sink.Options{})
			var le *sink.LockedError
			var fe *sink.ForeignLockError
			switch {
			case errors.As(err, &le) && le.Holder.Host == "racer":
			case errors.As(err, &fe) && fe.Holder.Host == "racer" && start == "changed before take-over":
			default:
				t.Fatalf("open: %v, want the racer's lock to stand", err)
			}
		})
	}
}

// TestOverwriteCutShort: a node whose removal by an overwrite was cut
// short (the marker, no zarr.json, chunks left) is refused without
// Overwrite, refused by Resume with the reason, and replaced with
// Overwrite, nothing of the old store left; a marker beside an intact
// store (cut short before its zarr.json went) is removed with it.
func TestOverwriteCutShort(t *testing.T) {
	e := newTestEnv(t)
	left := map[string]string{"out/" + sink.RemovingName: "", "out/c/0/0": "old", "out/c/1/0": "old"}
	e.put(t, left)
	var ex *sink.ExistsError
	if _, err := e.open("out", sink.Options{}); !errors.As(err, &ex) {
		t.Fatalf("open without overwrite: %v, want an ExistsError", err)
	}
	var nr *sink.NothingToResumeError
	if _, err := e.open("out", sink.Options{Resume: true}); !errors.As(err, &nr) || !nr.Occupied || !strings.Contains(err.Error(), "did not finish") {
		t.Fatalf("resume: %v, want a NothingToResumeError (occupied) saying the removal did not finish", err)
	}
	if got := e.keys(t, "out"); !slices.Equal(got, []string{sink.RemovingName, "c/0/0", "c/1/0"}) {
		t.Fatalf("refused opens changed the node: %v", got)
	}
	for _, intact := range []bool{false, true} {
		if intact {
			e.put(t, map[string]string{"out/zarr.json": arrayMeta, "out/" + sink.RemovingName: "", "out/c/5/5": "old"})
		}
		st := e.mustOpen(t, "out", sink.Options{Overwrite: true})
		commitFile(t, st, "zarr.json", `{"new": 1}`)
		commitFile(t, st, "c/0/0", "new")
		if err := st.Finish(); err != nil {
			t.Fatal(err)
		}
		if got := e.keys(t, "out"); !slices.Equal(got, []string{"c/0/0", "zarr.json"}) {
			t.Fatalf("intact %v: after the overwrite: %v", intact, got)
		}
	}
}

// TestRemovingMarkerProvesNothing: the marker beside keys that are not
// Zarr's (anyone can put an object of that name) is refused like any
// foreign prefix, nothing removed; beside an intact store it is removed
// when the store is opened (resume here), so it cannot outlive the run.
func TestRemovingMarkerProvesNothing(t *testing.T) {
	e := newTestEnv(t)
	e.put(t, map[string]string{"out/" + sink.RemovingName: "", "out/thesis.pdf": "mine", "out/c/0/0": "x"})
	var ns *sink.NotStoreError
	if _, err := e.open("out", sink.Options{Overwrite: true}); !errors.As(err, &ns) || !strings.Contains(err.Error(), "thesis.pdf") {
		t.Fatalf("overwrite of a marked prefix with a foreign object: %v, want a NotStoreError naming it", err)
	}
	if got := e.keys(t, "out"); !slices.Equal(got, []string{sink.RemovingName, "c/0/0", "thesis.pdf"}) {
		t.Fatalf("refused overwrite changed the prefix: %v", got)
	}
	e.put(t, map[string]string{"st/zarr.json": arrayMeta, "st/" + sink.RemovingName: "", "st/c/0/0": "x"})
	st := e.mustOpen(t, "st", sink.Options{Resume: true})
	st.Abandon(true)
	if got := e.keys(t, "st"); !slices.Equal(got, []string{"c/0/0", "zarr.json"}) {
		t.Fatalf("after a resume open: %v, want the marker gone", got)
	}
}
