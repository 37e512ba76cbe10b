package s3test

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is an HTTP proxy in front of a server, for the faults a client
// must survive: it passes requests through (keeping the Host header, so
// signatures stay valid), and on demand stalls them (a hung server),
// answers 503 SlowDown (a throttling one) or limits the bandwidth of
// request bodies (a slow one). Shape makes it a model of a remote or a
// many-core server instead: latency per request, bandwidth per request,
// and a cost per CompleteMultipartUpload in proportion to the object's
// size, each request on its own (as on a server with a core per request).
// It records every request.
type Proxy struct {
	// Endpoint is the proxy's URL, to use instead of the server's.
	Endpoint string

	srv   *httptest.Server
	rp    *httputil.ReverseProxy
	stall atomic.Bool
	// dropped counts stalled requests whose client hung up (never passed
	// on): the server notices a hang-up a moment after the client acts.
	dropped atomic.Int64
	slow    atomic.Int64 // SlowDown answers left; < 0: every request

	relMu   sync.Mutex
	release chan struct{} // closed by Release
	stalled chan struct{} // closed when a request first blocks
	stOnce  *sync.Once

	bwMu sync.Mutex
	bps  float64
	next time.Time

	reqMu sync.Mutex
	reqs  []Request
	after func(Request) // run once a passed-on request was answered, before the client sees it

	shMu    sync.Mutex
	shape   Shaping
	uploads map[string]int64 // bytes of parts passed per upload ID, for Shaping.CompleteBps
}

// Shaping is what Shape adds to every request passed on.
type Shaping struct {
	// Latency is waited before a request is passed on (a round trip).
	Latency time.Duration
	// RequestBps caps the rate at which each request's body is passed on
	// (bytes/s; 0: no cap): a link per connection, not shared.
	RequestBps float64
	// CompleteBps makes a CompleteMultipartUpload wait size/CompleteBps
	// before it is passed on, size being the bytes of the upload's parts
	// the proxy passed (0: no wait): the server assembling the object
	// from its parts, as versitygw's posix backend does by copying them.
	CompleteBps float64
}

// Shape sets the shaping of the requests that start from now on.
func (p *Proxy) Shape(sh Shaping) {
	p.shMu.Lock()
	p.shape = sh
	p.shMu.Unlock()
}

// Request is one request the proxy saw.
type Request struct {
	Method, Path, Query, Range string
	Answered                   int // status the proxy answered itself (503), 0 when passed on
}

// NewProxy starts a proxy to the server at target (an http:// URL); it
// closes when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p, err := StartProxy(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// StartProxy starts a proxy to the server at target outside a test (the
// shaping proxy command); Close stops it.
func StartProxy(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	p := &Proxy{release: make(chan struct{}), stalled: make(chan struct{}), stOnce: new(sync.Once), uploads: map[string]int64{}}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host // signed by the client
		},
		// Interrupted requests are what the tests make happen.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	// One connection to the server per request in flight, kept: the
	// default keeps 2 idle, and a busy client would make the proxy
	// reconnect all the time.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	p.rp.Transport = tr
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.Endpoint = p.srv.URL
	return p, nil
}

// Close stops the proxy: stalled requests are released, connections
// closed.
func (p *Proxy) Close() {
	p.Release()
	p.srv.CloseClientConnections()
	p.srv.Close()
}

// shapeRequest applies Shaping to r before it is passed on.
func (p *Proxy) shapeRequest(r *http.Request) {
	p.shMu.Lock()
	sh := p.shape
	q := r.URL.Query()
	id := q.Get("uploadId")
	var wait time.Duration
	if id != "" {
		switch {
		case r.Method == http.MethodPut && q.Has("partNumber") && r.ContentLength > 0:
			p.uploads[id] += r.ContentLength
		case r.Method == http.MethodPost:
			if sh.CompleteBps > 0 {
				wait = time.Duration(float64(p.uploads[id]) / sh.CompleteBps * float64(time.Second))
			}
			delete(p.uploads, id)
		case r.Method == http.MethodDelete:
			delete(p.uploads, id)
		}
	}
	p.shMu.Unlock()
	if d := sh.Latency + wait; d > 0 {
		time.Sleep(d)
	}
	if sh.RequestBps > 0 && r.Body != nil {
		r.Body = &capBody{ReadCloser: r.Body, bps: sh.RequestBps, start: time.Now()}
	}
}

// capBody passes a body on at most bps bytes a second.
type capBody struct {
	io.ReadCloser
	bps   float64
	start time.Time
	n     int64
}

func (b *capBody) Read(q []byte) (int, error) {
	if len(q) > 64<<10 {
		q = q[:64<<10]
	}
	n, err := b.ReadCloser.Read(q)
	b.n += int64(n)
	if d := time.Until(b.start.Add(time.Duration(float64(b.n) / b.bps * float64(time.Second)))); d > 0 {
		time.Sleep(d)
	}
	return n, err
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	rec := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Range: r.Header.Get("Range")}
	if p.stall.Load() {
		// Take the whole request first: the server then notices (and
		// cancels r's context) when the client hangs up, so a request the
		// client gave up on is dropped at Release, as a hung server that
		// lost the connection would never act on it.
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.relMu.Lock()
		rel, st, once := p.release, p.stalled, p.stOnce
		p.relMu.Unlock()
		once.Do(func() { close(st) })
		select {
		case <-rel:
		case <-r.Context().Done():
		}
		if r.Context().Err() != nil {
			p.record(rec)
			p.dropped.Add(1)
			return
		}
	}
	if n := p.slow.Load(); n != 0 && (n < 0 || p.slow.CompareAndSwap(n, n-1)) {
		rec.Answered = http.StatusServiceUnavailable
		p.record(rec)
		io.Copy(io.Discard, io.LimitReader(r.Body, 64<<20))
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		if r.Method != http.MethodHead {
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
				`<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><Resource>%s</Resource><RequestId>proxy</RequestId></Error>`, r.URL.Path)
		}
		return
	}
	p.record(rec)
	p.shapeRequest(r)
	p.bwMu.Lock()
	limited := p.bps > 0
	p.bwMu.Unlock()
	if limited && r.Body != nil {
		r.Body = &slowBody{ReadCloser: r.Body, p: p}
	}
	p.reqMu.Lock()
	after := p.after
	p.reqMu.Unlock()
	if after == nil {
		p.rp.ServeHTTP(w, r)
		return
	}
	rw := &heldResponse{header: http.Header{}}
	p.rp.ServeHTTP(rw, r)
	after(rec)
	for k, v := range rw.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rw.code)
	w.Write(rw.body.Bytes())
}

// After makes fn run once each passed-on request has been answered by
// the server, before the answer goes to the client (nil: no hook): what
// another client does between a request and the next.
func (p *Proxy) After(fn func(Request)) {
	p.reqMu.Lock()
	p.after = fn
	p.reqMu.Unlock()
}

// heldResponse keeps a response until After's hook ran.
type heldResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (h *heldResponse) Header() http.Header { return h.header }
func (h *heldResponse) WriteHeader(code int) {
	if h.code == 0 {
		h.code = code
	}
}
func (h *heldResponse) Write(b []byte) (int, error) {
	if h.code == 0 {
		h.code = http.StatusOK
	}
	return h.body.Write(b)
}

func (p *Proxy) record(r Request) {
	p.reqMu.Lock()
	p.reqs = append(p.reqs, r)
	p.reqMu.Unlock()
}

// Requests returns the requests seen so far, and forgets them.
func (p *Proxy) Requests() []Request {
	p.reqMu.Lock()
	defer p.reqMu.Unlock()
	r := p.reqs
	p.reqs = nil
	return r
}

// Stall makes every new request block (until Release, or until the
// client gives up).
func (p *Proxy) Stall() {
	p.relMu.Lock()
	p.release = make(chan struct{})
	p.stalled = make(chan struct{})
	p.stOnce = new(sync.Once)
	p.relMu.Unlock()
	p.stall.Store(true)
}

// Stalling is closed once a request blocks in the stall Stall began.
func (p *Proxy) Stalling() <-chan struct{} {
	p.relMu.Lock()
	defer p.relMu.Unlock()
	return p.stalled
}

// Dropped is the number of stalled requests dropped so far because their
// client hung up before Release.
func (p *Proxy) Dropped() int64 { return p.dropped.Load() }

// Release ends a stall: blocked requests go on.
func (p *Proxy) Release() {
	p.stall.Store(false)
	p.relMu.Lock()
	defer p.relMu.Unlock()
	select {
	case <-p.release:
	default:
		close(p.release)
	}
}

// SlowDown answers the next n requests with 503 SlowDown (n < 0: every
// request until SlowDown(0)).
func (p *Proxy) SlowDown(n int) { p.slow.Store(int64(n)) }

// Limit caps the bandwidth of request bodies, shared by all requests,
// at bytesPerSec (0: no limit).
func (p *Proxy) Limit(bytesPerSec int64) {
	p.bwMu.Lock()
	p.bps = float64(bytesPerSec)
	p.next = time.Time{}
	p.bwMu.Unlock()
}

type slowBody struct {
	io.ReadCloser
	p *Proxy
}

func (b *slowBody) Read(q []byte) (int, error) {
	if len(q) > 64<<10 {
		q = q[:64<<10]
	}
	n, err := b.ReadCloser.Read(q)
	if n > 0 {
		b.p.bwMu.Lock()
		now := time.Now()
		if b.p.next.Before(now) {
			b.p.next = now
		}
		if b.p.bps > 0 {
			b.p.next = b.p.next.Add(time.Duration(float64(n) / b.p.bps * float64(time.Second)))
		}
		d := b.p.next.Sub(now)
		b.p.bwMu.Unlock()
		time.Sleep(d)
	}
	return n, err
}
