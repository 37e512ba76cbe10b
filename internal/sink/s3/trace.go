package s3

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// TraceEnv names the environment variable that turns the upload trace
// on: a file path. Every store opened for writing and every Ceiling then
// append to that file, when they end, a summary of their requests
// (count, bytes, busy time per kind of request; time blocked for a part
// buffer; parts in flight and bytes sent per tenth of the run) followed
// by one line per request. It is a diagnostic for comparing the sink with
// the client alone on a machine one cannot watch (which of initiate,
// parts, completes, pool waits takes the time); off, it costs one nil
// check per request.
const TraceEnv = "ZWRITE_S3_TRACE"

// traceOp is what a trace event timed.
type traceOp uint8

const (
	opInit     traceOp = iota // NewMultipartUpload
	opPart                    // a full part, uploaded in the background
	opLast                    // the last (partial) part, sent by Commit or the lane
	opComplete                // CompleteMultipartUpload
	opPut                     // a small object's one PUT
	opPoolWait                // a file blocked for a free part buffer
	opPartWait                // Commit waiting for the file's parts in flight
	opCommit                  // a whole Commit, from call to return
	numOps
)

var opNames = [numOps]string{"initiate", "part", "last part", "complete", "put", "pool wait", "parts wait", "commit"}

// traceEvent is one timed request or wait.
type traceEvent struct {
	op         traceOp
	key        string
	part       int
	bytes      int64
	start, end time.Duration // since the trace began
}

// tracer records the requests of one store or one Ceiling. A nil
// *tracer records nothing.
type tracer struct {
	name string
	path string
	t0   time.Time
	mu   sync.Mutex
	ev   []traceEvent
}

// newTracer returns a tracer when getenv(TraceEnv) names a file, else
// nil.
func newTracer(getenv environ, name string) *tracer {
	p := getenv(TraceEnv)
	if p == "" {
		return nil
	}
	return &tracer{name: name, path: p, t0: time.Now()}
}

// begin returns the time an event starts (zero when not tracing).
func (t *tracer) begin() time.Time {
	if t == nil {
		return time.Time{}
	}
	return time.Now()
}

// add records an event that began at start and ends now.
func (t *tracer) add(op traceOp, key string, part int, bytes int64, start time.Time) {
	if t == nil {
		return
	}
	now := time.Now()
	t.mu.Lock()
	t.ev = append(t.ev, traceEvent{op: op, key: key, part: part, bytes: bytes, start: start.Sub(t.t0), end: now.Sub(t.t0)})
	t.mu.Unlock()
}

// flush appends the summary and the events to the trace file, once;
// errors are ignored (a diagnostic must not fail a run).
func (t *tracer) flush() {
	if t == nil {
		return
	}
	t.mu.Lock()
	ev := t.ev
	t.ev = nil
	t.mu.Unlock()
	if ev == nil {
		return
	}
	f, err := os.OpenFile(t.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	writeTrace(f, t.name, ev)
}

// writeTrace renders a trace: per kind of event its count, bytes, summed
// and longest duration and when the first began and the last ended; then
// per tenth of the span (first event's start to last event's end) the
// parts in flight on average, the bytes of parts sent (MB/s, parts
// prorated over their duration), and the commits, completes and pool
// waits in flight; then every event, by start.
func writeTrace(w io.Writer, name string, ev []traceEvent) {
	slices.SortFunc(ev, func(a, b traceEvent) int { return int(a.start - b.start) })
	lo, hi := ev[0].start, ev[0].end
	for _, e := range ev {
		hi = max(hi, e.end)
	}
	span := (hi - lo).Seconds()
	fmt.Fprintf(w, "=== %s: %d events over %.3f s (from %.3f s after the trace began)\n", name, len(ev), span, lo.Seconds())
	fmt.Fprintf(w, "%-11s %6s %10s %9s %8s %8s %9s %9s\n", "op", "n", "MB", "busy s", "mean ms", "max ms", "first s", "last s")
	var n [numOps]int
	var bytes [numOps]int64
	var busy, longest [numOps]time.Duration
	first, last := [numOps]time.Duration{}, [numOps]time.Duration{}
	for _, e := range ev {
		d := e.end - e.start
		if n[e.op] == 0 {
			first[e.op] = e.start
		}
		n[e.op]++
		bytes[e.op] += e.bytes
		busy[e.op] += d
		longest[e.op] = max(longest[e.op], d)
		last[e.op] = max(last[e.op], e.end)
	}
	for op := range numOps {
		if n[op] == 0 {
			continue
		}
		fmt.Fprintf(w, "%-11s %6d %10.1f %9.3f %8.1f %8.1f %9.3f %9.3f\n", opNames[op], n[op], float64(bytes[op])/1e6,
			busy[op].Seconds(), busy[op].Seconds()*1e3/float64(n[op]), longest[op].Seconds()*1e3,
			(first[op] - lo).Seconds(), (last[op] - lo).Seconds())
	}
	if span > 0 {
		sent := float64(bytes[opPart]+bytes[opLast]+bytes[opPut]) / span / 1e9
		fmt.Fprintf(w, "parts in flight %.2f on average; %.3f GB/s of parts and puts over the span\n",
			(busy[opPart]+busy[opLast]).Seconds()/span, sent)
		const bins = 10
		var inflight, mb, commits, completes, waits [bins]float64
		width := (hi - lo) / bins
		for _, e := range ev {
			d := e.end - e.start
			for b := range bins {
				bs, be := lo+time.Duration(b)*width, lo+time.Duration(b+1)*width
				ov := min(be, e.end) - max(bs, e.start)
				if ov <= 0 {
					continue
				}
				f := ov.Seconds() / width.Seconds()
				switch e.op {
				case opPart, opLast, opPut:
					inflight[b] += f
					if d > 0 {
						mb[b] += float64(e.bytes) * ov.Seconds() / d.Seconds() / 1e6
					}
				case opCommit:
					commits[b] += f
				case opComplete:
					completes[b] += f
				case opPoolWait:
					waits[b] += f
				}
			}
		}
		fmt.Fprintf(w, "%-13s %8s %8s %8s %9s %9s\n", "tenth from s", "parts", "MB/s", "commits", "completes", "poolwaits")
		for b := range bins {
			fmt.Fprintf(w, "%-13.3f %8.2f %8.0f %8.2f %9.2f %9.2f\n", (time.Duration(b) * width).Seconds(), inflight[b],
				mb[b]/width.Seconds(), commits[b], completes[b], waits[b])
		}
	}
	var sb strings.Builder
	for _, e := range ev {
		fmt.Fprintf(&sb, "ev %s %.6f %.6f %.3f %s %d %d\n", strings.ReplaceAll(opNames[e.op], " ", "-"),
			(e.start - lo).Seconds(), (e.end - lo).Seconds(), (e.end-e.start).Seconds()*1e3, e.key, e.part, e.bytes)
	}
	io.WriteString(w, sb.String())
}
