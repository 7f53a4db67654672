// The Go contender of reseau-bench's HTTP rows (benches/src/http.rs):
// net/http serving the same 13-byte body as examples/http_server.rs.
//
//	http ADDR   prints "listening on ADDR", then serves until killed
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

func httpServe(addr string) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", l.Addr())
	body := []byte("Hello, World!")
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write(body)
		}),
		// The same bound on a silent connection as the other contenders.
		ReadTimeout: 60 * time.Second,
		IdleTimeout: 60 * time.Second,
	}
	srv.Serve(l)
}
