package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
)

// openReader opens s3://BUCKET/PREFIX for reading only. One listing
// checks the endpoint, the credentials and the bucket first, so that the
// reading commands say what is wrong rather than "no zarr.json".
// Credentials are optional here: without any, requests go anonymous
// (public buckets).
func openReader(u *url.URL, endpoint string, getenv environ, tune tuning) (fs.FS, error) {
	t, err := parseTarget(u)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", u.Redacted(), err)
	}
	display := location(t.bucket, t.prefix)
	cfg, err := resolveConfig(getenv, endpoint, false)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", display, err)
	}
	c, err := newClient(cfg, t.bucket, tune)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", display, err)
	}
	if _, _, err := c.withTries(probeTries).listDir(context.Background(), dirPrefix(t.prefix)); err != nil {
		return nil, fmt.Errorf("store %s: %w", display, err)
	}
	return &objFS{c: c, prefix: t.prefix}, nil
}

// objFS is a read-only fs.FS over the keys under a prefix: an object is
// a regular file (Stat from HEAD or the listing, ReadAt by ranged GETs, so
// a reader fetches shard indexes and chunks, never whole objects), a
// key prefix is a directory (ReadDir lists with a delimiter, so
// fs.WalkDir works). Names are fs.ValidPath names, so no key outside the
// prefix can be named.
type objFS struct {
	c      *client
	prefix string
}

func (f *objFS) key(name string) string {
	if name == "." {
		return f.prefix
	}
	return join(f.prefix, name)
}

// Open implements fs.FS.
func (f *objFS) Open(name string) (fs.File, error) {
	fi, err := f.stat("open", name)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return &objDir{fs: f, name: name, info: fi}, nil
	}
	return &objFile{fs: f, key: f.key(name), info: fi}, nil
}

// Stat implements fs.StatFS.
func (f *objFS) Stat(name string) (fs.FileInfo, error) { return f.stat("stat", name) }

func (f *objFS) stat(op, name string) (*objInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return &objInfo{name: ".", dir: true}, nil
	}
	ctx := context.Background()
	key := f.key(name)
	var info minio.ObjectInfo
	err := f.c.do(ctx, "stat "+location(f.c.bucket, key), 0, func(ctx context.Context) error {
		var err error
		info, err = f.c.core.StatObject(ctx, f.c.bucket, key, minio.StatObjectOptions{})
		return err
	})
	if err == nil {
		return &objInfo{name: pathBase(name), size: info.Size, mod: info.LastModified}, nil
	}
	if !notFound(err) {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	// No object: a directory if any key lies below it.
	var res minio.ListBucketV2Result
	err = f.c.do(ctx, "list "+location(f.c.bucket, key+"/"), 0, func(ctx context.Context) error {
		var err error
		res, err = f.c.core.ListObjectsV2(f.c.bucket, key+"/", "", "", "/", 1)
		return err
	})
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	if len(res.Contents) == 0 && len(res.CommonPrefixes) == 0 {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return &objInfo{name: pathBase(name), dir: true}, nil
}

func pathBase(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// ReadDir implements fs.ReadDirFS: the names directly under name,
// sorted. A name that is both an object and a prefix (S3 allows it) is
// listed as the directory.
func (f *objFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	files, dirs, err := f.c.listDir(context.Background(), dirPrefix(f.key(name)))
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	if name != "." && len(files) == 0 && len(dirs) == 0 {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	isDir := make(map[string]bool, len(dirs))
	out := make([]fs.DirEntry, 0, len(files)+len(dirs))
	for _, d := range dirs {
		isDir[d] = true
		out = append(out, fs.FileInfoToDirEntry(&objInfo{name: d, dir: true}))
	}
	for _, o := range files {
		if !isDir[o.rel] {
			out = append(out, fs.FileInfoToDirEntry(&objInfo{name: o.rel, size: o.size, mod: o.mod}))
		}
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// objInfo is an object's or a prefix's fs.FileInfo.
type objInfo struct {
	name string
	size int64
	mod  time.Time
	dir  bool
}

func (i *objInfo) Name() string       { return i.name }
func (i *objInfo) Size() int64        { return i.size }
func (i *objInfo) ModTime() time.Time { return i.mod }
func (i *objInfo) IsDir() bool        { return i.dir }
func (i *objInfo) Sys() any           { return nil }
func (i *objInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}

// wholeObject is the size up to which an object is fetched whole, once,
// at its first read (zarr.json, small shards): one request instead of
// one per chunk, and small enough that caching it costs nothing.
const wholeObject = 64 << 10

// objFile is an open object: ReadAt is safe for concurrent use (each
// call is its own ranged GET); Read and Seek keep an offset.
type objFile struct {
	fs   *objFS
	key  string
	info *objInfo

	mu   sync.Mutex
	off  int64
	body io.ReadCloser // the GET Read reads from, at off

	wholeOnce sync.Once
	data      []byte // a small object's content (wholeObject)
	dataErr   error
}

// whole returns a small object's content, fetched once.
func (o *objFile) whole() ([]byte, error) {
	o.wholeOnce.Do(func() {
		b, _, err := o.fs.c.getSmall(context.Background(), o.key, wholeObject)
		switch {
		case errors.Is(err, errTooLarge):
			err = fmt.Errorf("the object grew past its listed size %d while being read", o.info.size)
		case err == nil && int64(len(b)) != o.info.size:
			err = fmt.Errorf("the object has %d bytes, listed as %d (it changed while being read)", len(b), o.info.size)
		}
		o.data, o.dataErr = b, err
	})
	return o.data, o.dataErr
}

func (o *objFile) Stat() (fs.FileInfo, error) { return o.info, nil }

// ReadAt reads len(p) bytes at off with one ranged GET (io.EOF when the
// object ends first).
func (o *objFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: o.info.name, Err: fs.ErrInvalid}
	}
	size := o.info.size
	if off >= size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), size-off)
	if want == 0 {
		return 0, nil
	}
	if size <= wholeObject {
		b, err := o.whole()
		if err != nil {
			return 0, &fs.PathError{Op: "read", Path: o.info.name, Err: err}
		}
		n := copy(p, b[off:])
		if n < len(p) {
			return n, io.EOF
		}
		return n, nil
	}
	var n int
	err := o.fs.c.do(context.Background(), fmt.Sprintf("read %s at %d", location(o.fs.c.bucket, o.key), off), want, func(ctx context.Context) error {
		var opts minio.GetObjectOptions
		if err := opts.SetRange(off, off+want-1); err != nil {
			return err
		}
		r, _, _, err := o.fs.c.core.GetObject(ctx, o.fs.c.bucket, o.key, opts)
		if err != nil {
			return err
		}
		defer r.Close()
		n, err = io.ReadFull(r, p[:want])
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	})
	if err != nil {
		return n, &fs.PathError{Op: "read", Path: o.info.name, Err: err}
	}
	if int64(n) < int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

// Read reads on from the offset through one GET of the rest of the
// object, opened at the first Read after an Open or a Seek (and again
// after a broken connection, at the offset reached).
func (o *objFile) Read(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.off >= o.info.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if o.info.size <= wholeObject {
		n, err := o.ReadAt(p, o.off)
		o.off += int64(n)
		if err == io.EOF && n > 0 {
			err = nil
		}
		return n, err
	}
	for try := 1; ; try++ {
		if o.body == nil {
			off := o.off
			err := o.fs.c.do(context.Background(), "read "+location(o.fs.c.bucket, o.key), 0, func(ctx context.Context) error {
				var opts minio.GetObjectOptions
				if off > 0 {
					if err := opts.SetRange(off, 0); err != nil {
						return err
					}
				}
				// Not ctx: the body is read by later Reads, after this
				// try's timeout; the transport bounds the wait for headers.
				r, _, _, err := o.fs.c.core.GetObject(context.Background(), o.fs.c.bucket, o.key, opts)
				o.body = r
				return err
			})
			if err != nil {
				o.body = nil
				return 0, &fs.PathError{Op: "read", Path: o.info.name, Err: err}
			}
		}
		n, err := o.body.Read(p)
		o.off += int64(n)
		if n > 0 || err == nil {
			return n, nil
		}
		o.body.Close()
		o.body = nil
		if o.off >= o.info.size {
			return 0, io.EOF
		}
		if try >= o.fs.c.tune.tries || !transient(err) && !errors.Is(err, io.EOF) {
			return 0, &fs.PathError{Op: "read", Path: o.info.name, Err: fmt.Errorf("read at %d of %d bytes: %s", o.off, o.info.size, describe(err))}
		}
	}
}

func (o *objFile) Seek(offset int64, whence int) (int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += o.off
	case io.SeekEnd:
		offset += o.info.size
	default:
		return 0, &fs.PathError{Op: "seek", Path: o.info.name, Err: fs.ErrInvalid}
	}
	if offset < 0 {
		return 0, &fs.PathError{Op: "seek", Path: o.info.name, Err: fs.ErrInvalid}
	}
	if offset != o.off && o.body != nil {
		o.body.Close()
		o.body = nil
	}
	o.off = offset
	return offset, nil
}

// Close ends a Read's GET.
func (o *objFile) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.body != nil {
		o.body.Close()
		o.body = nil
	}
	return nil
}

// objDir is an open prefix.
type objDir struct {
	fs   *objFS
	name string
	info *objInfo

	ents []fs.DirEntry
	read bool
}

func (d *objDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *objDir) Close() error               { return nil }
func (d *objDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: errors.New("is a directory")}
}

// ReadDir implements fs.ReadDirFile.
func (d *objDir) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.read {
		ents, err := d.fs.ReadDir(d.name)
		if err != nil {
			return nil, err
		}
		d.ents, d.read = ents, true
	}
	if n <= 0 {
		out := d.ents
		d.ents = nil
		return out, nil
	}
	if len(d.ents) == 0 {
		return nil, io.EOF
	}
	k := min(n, len(d.ents))
	out := d.ents[:k]
	d.ents = d.ents[k:]
	return out, nil
}
