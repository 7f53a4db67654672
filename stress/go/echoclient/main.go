// echoclient: a Go crypto/tls peer for reseau's interop matrix
// (stress/src/bin/interop.rs). It dials -addr, verifies the server against
// -ca and -servername, sends -size bytes of a known pattern while reading
// them back, checks them, closes (with close_notify), prints what it saw
// and exits: 0 when every byte came back, 1 on any error. Every step is
// bounded by -timeout.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

func versionOf(s string) uint16 {
	switch s {
	case "1.2":
		return tls.VersionTLS12
	case "1.3":
		return tls.VersionTLS13
	}
	fail(fmt.Errorf("unknown version %q (1.2 or 1.3)", s))
	return 0
}

func versionName(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}

func fail(err error) {
	fmt.Printf("ERROR %v\n", err)
	os.Exit(1)
}

// pattern is the payload both ends agree on: byte i is (i*7 + i/251) mod 256.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func main() {
	addr := flag.String("addr", "", "host:port to dial")
	caFile := flag.String("ca", "", "CA that signed the server certificate (PEM)")
	serverName := flag.String("servername", "localhost", "name to verify (and send as SNI)")
	version := flag.String("version", "1.3", "the only TLS version offered: 1.2 or 1.3")
	certFile := flag.String("cert", "", "client certificate (PEM), optional")
	keyFile := flag.String("key", "", "client key (PEM), optional")
	size := flag.Int("size", 65536, "bytes to send and expect back")
	timeout := flag.Duration("timeout", 20*time.Second, "bound on the whole run")
	flag.Parse()

	pem, err := os.ReadFile(*caFile)
	if err != nil {
		fail(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		fail(errors.New("no certificate in the CA file"))
	}
	v := versionOf(*version)
	cfg := &tls.Config{RootCAs: pool, ServerName: *serverName, MinVersion: v, MaxVersion: v}
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			fail(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}

	deadline := time.Now().Add(*timeout)
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Deadline: deadline}, Config: cfg}
	c, err := dialer.Dial("tcp", *addr)
	if err != nil {
		fail(fmt.Errorf("dial: %w", err))
	}
	conn := c.(*tls.Conn)
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		fail(err)
	}
	st := conn.ConnectionState()
	payload := pattern(*size)
	werr := make(chan error, 1)
	go func() {
		_, err := conn.Write(payload)
		werr <- err
	}()
	back := make([]byte, len(payload))
	if _, err := io.ReadFull(conn, back); err != nil {
		fail(fmt.Errorf("read: %w", err))
	}
	if err := <-werr; err != nil {
		fail(fmt.Errorf("write: %w", err))
	}
	if !bytes.Equal(back, payload) {
		fail(errors.New("the echo differs from what was sent"))
	}
	fmt.Printf("VERSION %s\n", versionName(st.Version))
	fmt.Printf("CIPHER %s\n", tls.CipherSuiteName(st.CipherSuite))
	fmt.Printf("BYTES %d\n", len(back))
	fmt.Println("OK")
}
