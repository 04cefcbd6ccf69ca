// loadgen: the benchmark's load generator and HTTPS upstream, in Go (standard library only).
//
//	loadgen serve -addr 127.0.0.2:0 -cert cert.pem -key key.pem
//	    HTTPS upstream: "/" → 2-byte "ok"; "/bytes/<n>" → n bytes streamed in 64 KiB writes;
//	    "/hold/<seconds>" → silent (no response head) for that long or until the client goes away;
//	    "/holding" → how many /hold requests are being held now.
//	    Prints "listening <port>" on stdout.
//	loadgen load -url https://api.test:<p>/ [-proxy http://x:TOKEN@127.0.0.1:<port>] -ca proxy-ca.pem
//	    [-resolve api.test=127.0.0.2] [-c 16] [-d 4s] [-keepalive=true] [-n 0] [-urls a,b,c] [-body]
//	    Closed-loop load: c workers send requests back to back for d (or n requests in total, or
//	    each of -urls once, sequentially). Prints one JSON object: requests, errors, rps, p50/p99 µs,
//	    bytes, first error. -trace FILE: one line per request (µs): its start since the load began,
//	    then since its own start the TCP connect done, the TLS handshake's start and end (with a
//	    proxy, between the two first: the CONNECT exchange), the request written, the first response
//	    byte and the end (-1: did not happen, e.g. a reused connection) — where a slow request's time
//	    went.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen serve|load [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2:])
	case "load":
		load(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "usage: loadgen serve|load [flags]")
		os.Exit(2)
	}
}

func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.2:0", "listen address")
	cert := fs.String("cert", "", "certificate PEM")
	key := fs.String("key", "", "key PEM")
	fs.Parse(args)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	chunk := make([]byte, 64*1024)
	for i := range chunk {
		chunk[i] = byte(i*7 + 13)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/bytes/", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/bytes/"), 10, 64)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		for n > 0 {
			m := int64(len(chunk))
			if n < m {
				m = n
			}
			if _, err := w.Write(chunk[:m]); err != nil {
				return
			}
			n -= m
		}
	})
	var holding int64
	mux.HandleFunc("/holding", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%d", atomic.LoadInt64(&holding))
	})
	mux.HandleFunc("/hold/", func(w http.ResponseWriter, r *http.Request) {
		atomic.AddInt64(&holding, 1)
		defer atomic.AddInt64(&holding, -1)
		secs, _ := strconv.ParseFloat(strings.TrimPrefix(r.URL.Path, "/hold/"), 64)
		select {
		case <-time.After(time.Duration(secs * float64(time.Second))):
		case <-r.Context().Done():
			return
		}
		w.Write([]byte("ok"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok"))
	})
	fmt.Printf("listening %d\n", ln.Addr().(*net.TCPAddr).Port)
	// connections the load generator abandons at the end of a cell are not worth a log line
	srv := &http.Server{Handler: mux, ErrorLog: log.New(io.Discard, "", 0)}
	if err := srv.ServeTLS(ln, *cert, *key); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

type result struct {
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	Seconds    float64 `json:"seconds"`
	RPS        float64 `json:"rps"`
	P50us      int64   `json:"p50_us"`
	P99us      int64   `json:"p99_us"`
	Bytes      int64   `json:"bytes"`
	FirstError string  `json:"first_error,omitempty"`
	Body       string  `json:"body,omitempty"`
}

func load(args []string) {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	target := fs.String("url", "", "request URL")
	urls := fs.String("urls", "", "comma-separated URLs, each requested once, sequentially")
	proxy := fs.String("proxy", "", "proxy URL with credentials (empty: direct)")
	caFile := fs.String("ca", "", "CA bundle to trust (PEM; several allowed, comma-separated)")
	resolve := fs.String("resolve", "", "name=ip for direct dials")
	c := fs.Int("c", 1, "concurrency")
	d := fs.Duration("d", 4*time.Second, "duration")
	n := fs.Int64("n", 0, "total requests (0: run for -d)")
	keepalive := fs.Bool("keepalive", true, "reuse connections")
	withBody := fs.Bool("body", false, "report the last response body (small bodies)")
	traceFile := fs.String("trace", "", "write each request's phases (µs) to this file")
	fs.Parse(args)

	pool := x509.NewCertPool()
	for _, f := range strings.Split(*caFile, ",") {
		if f == "" {
			continue
		}
		pem, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		pool.AppendCertsFromPEM(pem)
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		DisableKeepAlives:   !*keepalive,
		MaxIdleConnsPerHost: *c + 8,
		MaxIdleConns:        *c + 8,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if *resolve != "" {
				kv := strings.SplitN(*resolve, "=", 2)
				host, port, _ := net.SplitHostPort(addr)
				if host == kv[0] {
					addr = net.JoinHostPort(kv[1], port)
				}
			}
			return dialer.DialContext(ctx, network, addr)
		},
	}
	if *proxy != "" {
		pu, err := url.Parse(*proxy)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		tr.Proxy = http.ProxyURL(pu)
	}
	client := &http.Client{Transport: tr, Timeout: 120 * time.Second}

	var list []string
	if *urls != "" {
		list = strings.Split(*urls, ",")
		*c = 1
	}
	var reqs, errs, bytes int64
	var firstErr, lastBody atomic.Value
	lats := make([][]int64, *c)
	traces := make([][]string, *c)
	start := time.Now()
	deadline := start.Add(*d)
	var wg sync.WaitGroup
	for w := 0; w < *c; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				u := *target
				if list != nil {
					if i >= len(list) {
						return
					}
					u = list[i]
				} else if *n > 0 {
					if atomic.AddInt64(&reqs, 1) > *n {
						atomic.AddInt64(&reqs, -1)
						return
					}
				} else if time.Now().After(deadline) {
					return
				}
				t := time.Now()
				req, _ := http.NewRequest("GET", u, nil)
				var ph [5]int64 // connect done, TLS start, TLS done, written, first byte
				if *traceFile != "" {
					for k := range ph {
						ph[k] = -1
					}
					// the dial's hooks run on the transport's own goroutine
					at := func(k int) func() { return func() { atomic.StoreInt64(&ph[k], time.Since(t).Microseconds()) } }
					req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
						ConnectDone:          func(string, string, error) { at(0)() },
						TLSHandshakeStart:    at(1),
						TLSHandshakeDone:     func(tls.ConnectionState, error) { at(2)() },
						WroteRequest:         func(httptrace.WroteRequestInfo) { at(3)() },
						GotFirstResponseByte: at(4),
					}))
				}
				resp, err := client.Do(req)
				if err == nil {
					var m int64
					if *withBody {
						var b []byte
						b, err = io.ReadAll(io.LimitReader(resp.Body, 1<<16))
						m = int64(len(b))
						lastBody.Store(string(b))
					} else {
						m, err = io.Copy(io.Discard, resp.Body)
					}
					resp.Body.Close()
					atomic.AddInt64(&bytes, m)
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				lat := time.Since(t).Microseconds()
				if *traceFile != "" {
					traces[w] = append(traces[w], fmt.Sprintf("%d %d %d %d %d %d %d%s", t.Sub(start).Microseconds(), atomic.LoadInt64(&ph[0]), atomic.LoadInt64(&ph[1]), atomic.LoadInt64(&ph[2]), atomic.LoadInt64(&ph[3]), atomic.LoadInt64(&ph[4]), lat, map[bool]string{true: " error", false: ""}[err != nil]))
				}
				if *n == 0 || list != nil {
					atomic.AddInt64(&reqs, 1)
				}
				if err != nil {
					atomic.AddInt64(&errs, 1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				lats[w] = append(lats[w], lat)
			}
		}(w)
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	if *traceFile != "" {
		var lines []string
		for _, l := range traces {
			lines = append(lines, l...)
		}
		if err := os.WriteFile(*traceFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	var all []int64
	for _, l := range lats {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) int64 {
		if len(all) == 0 {
			return 0
		}
		i := int(float64(len(all)-1) * p)
		return all[i]
	}
	r := result{Requests: reqs, Errors: errs, Seconds: el, RPS: float64(len(all)) / el, P50us: pct(0.5), P99us: pct(0.99), Bytes: bytes}
	if v := firstErr.Load(); v != nil {
		r.FirstError = v.(string)
	}
	if v := lastBody.Load(); v != nil {
		r.Body = v.(string)
	}
	json.NewEncoder(os.Stdout).Encode(r)
}
