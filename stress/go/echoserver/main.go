// echoserver: a Go crypto/tls peer for reseau's interop matrix
// (stress/src/bin/interop.rs). It listens on 127.0.0.1 with a port of its
// own, prints "LISTEN host:port", serves exactly one connection by echoing
// what it reads until the client closes, then prints what it saw and exits:
// 0 when the connection was served, 1 on any error. Every step is bounded by
// -timeout.
package main

import (
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

func main() {
	certFile := flag.String("cert", "", "server certificate (PEM)")
	keyFile := flag.String("key", "", "server key (PEM)")
	caFile := flag.String("ca", "", "CA for client certificates (PEM)")
	version := flag.String("version", "1.3", "the only TLS version offered: 1.2 or 1.3")
	clientCert := flag.Bool("clientcert", false, "require and verify a client certificate")
	timeout := flag.Duration("timeout", 20*time.Second, "bound on the whole run")
	flag.Parse()

	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		fail(err)
	}
	v := versionOf(*version)
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: v, MaxVersion: v}
	if *clientCert {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			fail(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			fail(errors.New("no certificate in the CA file"))
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}

	deadline := time.Now().Add(*timeout)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	defer ln.Close()
	fmt.Printf("LISTEN %s\n", ln.Addr())
	if err := ln.(*net.TCPListener).SetDeadline(deadline); err != nil {
		fail(err)
	}
	raw, err := ln.Accept()
	if err != nil {
		fail(err)
	}
	conn := tls.Server(raw, cfg)
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		fail(err)
	}
	if err := conn.Handshake(); err != nil {
		fail(fmt.Errorf("handshake: %w", err))
	}
	st := conn.ConnectionState()
	n, err := io.Copy(conn, conn)
	if err != nil {
		fail(fmt.Errorf("echo after %d bytes: %w", n, err))
	}
	fmt.Printf("VERSION %s\n", versionName(st.Version))
	fmt.Printf("CIPHER %s\n", tls.CipherSuiteName(st.CipherSuite))
	fmt.Printf("PEERCERTS %d\n", len(st.PeerCertificates))
	if len(st.PeerCertificates) > 0 {
		fmt.Printf("PEERLEAF %s\n", st.PeerCertificates[0].Subject.CommonName)
	}
	fmt.Printf("BYTES %d\n", n)
	fmt.Println("OK")
}
