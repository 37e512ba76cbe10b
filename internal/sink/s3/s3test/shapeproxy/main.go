// Command shapeproxy puts s3test's shaping proxy in front of an S3
// server, for measuring the object-store sink against its same-run
// ceiling where the upload's structure (requests in flight, completes)
// rather than the local CPU sets the rate: a 2-core machine running
// versitygw on loopback is CPU-bound, a many-core one or a remote server
// is not. Both the sink and the ceiling of one `zwrite bench -o s3://`
// go through it (point AWS_ENDPOINT_URL at the address it prints).
//
//	go run ./internal/sink/s3/s3test/shapeproxy -target http://127.0.0.1:7070 \
//	    -listen-file /tmp/px.url -latency 1ms -request-mbps 3 -complete-mbps 30
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/zwrite/zwrite/internal/sink/s3/s3test"
)

func main() {
	target := flag.String("target", "http://127.0.0.1:7070", "the S3 server")
	urlFile := flag.String("listen-file", "", "write the proxy's URL to this file")
	latency := flag.Duration("latency", 0, "wait before each request")
	reqMBps := flag.Float64("request-mbps", 0, "cap per request body, MB/s (0: none)")
	compMBps := flag.Float64("complete-mbps", 0, "CompleteMultipartUpload waits object size / this, MB/s (0: none)")
	flag.Parse()
	p, err := s3test.StartProxy(*target)
	if err != nil {
		fmt.Fprintln(os.Stderr, "shapeproxy:", err)
		os.Exit(1)
	}
	p.Shape(s3test.Shaping{Latency: *latency, RequestBps: *reqMBps * 1e6, CompleteBps: *compMBps * 1e6})
	fmt.Println(p.Endpoint)
	if *urlFile != "" {
		if err := os.WriteFile(*urlFile, []byte(p.Endpoint+"\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "shapeproxy:", err)
			os.Exit(1)
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	p.Close()
}
