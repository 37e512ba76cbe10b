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
// request bodies (a slow one). It records every request.
type Proxy struct {
	// Endpoint is the proxy's URL, to use instead of the server's.
	Endpoint string

	srv   *httptest.Server
	rp    *httputil.ReverseProxy
	stall atomic.Bool
	slow  atomic.Int64 // SlowDown answers left; < 0: every request

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
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{release: make(chan struct{}), stalled: make(chan struct{}), stOnce: new(sync.Once)}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host // signed by the client
		},
		// Interrupted requests are what the tests make happen.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.Endpoint = p.srv.URL
	t.Cleanup(func() {
		p.Release()
		p.srv.CloseClientConnections()
		p.srv.Close()
	})
	return p
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
