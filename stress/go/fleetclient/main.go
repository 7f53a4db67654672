// fleetclient: a Go crypto/tls client for reseau's fleet features
// (tests/interop.rs). It dials each address of -addrs in turn with one
// Config, so one LRU session cache (Go's NewLRUClientSessionCache) keyed by
// -servername, as a Go program reaching one service through several
// addresses does. On each connection it reads two bytes (so a TLS 1.3
// ticket is taken in), prints what it saw, and closes with close_notify:
//
//	CONN <i> RESUMED <true|false> VERSION <TLSv1.x> ALPN <proto or ->
//	CONN <i> EXPORT <hex>     (with -export-label; context -export-context)
//	OK
//
// A failed handshake prints `CONN <i> ERROR <text>` and goes on; any other
// failure prints ERROR and exits 1. Every step is bounded by -timeout.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

func fail(err error) {
	fmt.Printf("ERROR %v\n", err)
	os.Exit(1)
}

func main() {
	addrs := flag.String("addrs", "", "comma-separated host:port list, dialed in order")
	caFile := flag.String("ca", "", "CA that signed the server certificates (PEM)")
	serverName := flag.String("servername", "localhost", "name to verify (and send as SNI)")
	version := flag.String("version", "1.3", "the only TLS version offered: 1.2 or 1.3")
	alpn := flag.String("alpn", "", "comma-separated ALPN protocols to offer")
	label := flag.String("export-label", "", "export keying material with this label")
	context := flag.String("export-context", "", "the exporter context (empty: none)")
	length := flag.Int("export-len", 32, "bytes of keying material")
	timeout := flag.Duration("timeout", 20*time.Second, "bound on each connection")
	flag.Parse()

	pem, err := os.ReadFile(*caFile)
	if err != nil {
		fail(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		fail(fmt.Errorf("no certificate in %s", *caFile))
	}
	v := uint16(tls.VersionTLS13)
	if *version == "1.2" {
		v = tls.VersionTLS12
	}
	config := &tls.Config{
		RootCAs:            roots,
		ServerName:         *serverName,
		MinVersion:         v,
		MaxVersion:         v,
		ClientSessionCache: tls.NewLRUClientSessionCache(64),
	}
	if *alpn != "" {
		config.NextProtos = strings.Split(*alpn, ",")
	}
	for i, addr := range strings.Split(*addrs, ",") {
		raw, err := net.DialTimeout("tcp", addr, *timeout)
		if err != nil {
			fail(err)
		}
		raw.SetDeadline(time.Now().Add(*timeout))
		conn := tls.Client(raw, config)
		if err := conn.Handshake(); err != nil {
			fmt.Printf("CONN %d ERROR %v\n", i, err)
			raw.Close()
			continue
		}
		var two [2]byte
		if _, err := io.ReadFull(conn, two[:]); err != nil {
			fail(err)
		}
		st := conn.ConnectionState()
		proto := st.NegotiatedProtocol
		if proto == "" {
			proto = "-"
		}
		name := "TLSv1.3"
		if st.Version == tls.VersionTLS12 {
			name = "TLSv1.2"
		}
		fmt.Printf("CONN %d RESUMED %v VERSION %s ALPN %s\n", i, st.DidResume, name, proto)
		if *label != "" {
			var ctx []byte
			if *context != "" {
				ctx = []byte(*context)
			}
			ekm, err := st.ExportKeyingMaterial(*label, ctx, *length)
			if err != nil {
				fail(err)
			}
			fmt.Printf("CONN %d EXPORT %s\n", i, hex.EncodeToString(ekm))
		}
		conn.Close()
	}
	fmt.Println("OK")
}
